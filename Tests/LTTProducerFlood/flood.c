// flood: what any user of the machine can do to a producer socket, which
// is abstract (no file mode guards it): connect COUNT times to the
// abstract socket NAME, never say hello, hold the connections SECONDS
// seconds. Built with plain cc by the tests and run as another user.
// Prints "ready N" (N connections made) once they are all open.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: flood NAME COUNT SECONDS\n");
        return 2;
    }
    const char *name = argv[1];
    int count = atoi(argv[2]), seconds = atoi(argv[3]), made = 0;
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    size_t length = strlen(name);
    if (length + 1 > sizeof address.sun_path)
        return 2;
    memcpy(address.sun_path + 1, name, length);
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        if (fd < 0)
            break;
        if (connect(fd, (struct sockaddr *)&address, size) == 0)
            made++;
        else
            close(fd);
    }
    printf("ready %d\n", made);
    fflush(stdout);
    sleep((unsigned)seconds);
    return 0;
}
