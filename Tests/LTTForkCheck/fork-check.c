// fork-check: what a child of fork(2) records through the lttfs producer
// library, built against an install.sh prefix by the tests.
//
// The parent records 100 events (src 1), forks, and records 100 more
// (src 2) once the child is done. The child records 100 events through
// its parent's marker (src 4): every one must be refused and none may reach
// the buffers; registering through the parent's producer must fail, and
// closing it must not end the parent's connection; then the child opens a
// producer of its own and records 100 (src 3). The parent registers one
// more marker at the end: its connection still works.
// Exit 0 when every call returned what it should.
#include <lttfs/producer.h>
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

// A producer of this process and its marker; on failure, says why and exits.
static lttfs_marker *open_marker(lttfs_producer **producer, const char *who)
{
    *producer = lttfs_producer_open(NULL);
    lttfs_marker *marker = *producer ? lttfs_marker_register(*producer, "app", "item", "seq %lu src %u") : NULL;
    if (!marker) {
        char why[256];
        lttfs_last_error(why, sizeof why);
        fprintf(stderr, "fork-check %s: %s\n", who, why);
        _exit(1);
    }
    return marker;
}

static int record(lttfs_marker *marker, unsigned src, int expected)
{
    int wrong = 0;
    for (unsigned long i = 0; i < 100; i++)
        if (lttfs_record(marker, LTTFS_UINT(i), LTTFS_UINT(src)) != expected)
            wrong++;
    return wrong;
}

int main(void)
{
    lttfs_producer *parent;
    lttfs_marker *marker = open_marker(&parent, "parent");
    if (record(marker, 1, 0))
        return 1;
    pid_t child = fork();
    if (child == 0) {
        // The parent's registration: refused, nothing recorded or counted;
        // registering through it is refused too, and letting it go leaves
        // the parent's connection alone.
        int wrong = record(marker, 4, -EPERM);
        if (lttfs_marker_register(parent, "app", "other", "x %u") != NULL)
            wrong++;
        lttfs_producer_close(parent);
        lttfs_producer *own;
        lttfs_marker *mine = open_marker(&own, "child");
        wrong += record(mine, 3, 0);
        lttfs_producer_close(own);
        if (wrong)
            fprintf(stderr, "fork-check child: %d calls returned what they should not\n", wrong);
        _exit(wrong ? 1 : 0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    if (record(marker, 2, 0))
        return 1;
    if (!lttfs_marker_register(parent, "app", "after", "x %u")) {
        fprintf(stderr, "fork-check: the parent's connection did not survive the child\n");
        return 1;
    }
    lttfs_producer_close(parent);
    printf("fork-check: parent 200, child 100 of its own, 0 through its parent's\n");
    return 0;
}
