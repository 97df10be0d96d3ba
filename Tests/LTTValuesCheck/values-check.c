// values-check: what the lttfs producer library does with the values a C
// caller hands it, built against an install.sh prefix by the tests.
//
// Records into app.texts ("text %s n %u"):
//   n 1: a NULL text, recorded as "(null)";
//   n 2: a text with a length shorter than its string: that many bytes;
//   n 3: a text whose length no buffer holds (2^64 - 1): refused as lost
//        (-ENOBUFS), nothing of it read;
//   n 4: a length of 2^40, the same;
//   n 5: an empty text;
//   n 6: a call with one value for two fields: -EINVAL, nothing recorded;
//   n 7: a length past the text's NUL: the text, then '#' for the rest.
// And into app.bare, a marker with no fields (format ""): a call with no
// values records one event, twice (values NULL, then not); a call with one
// value is -EINVAL. A format that is not UTF-8 is refused (EINVAL).
// Exit 0 when every call returned what it should.
#include <lttfs/producer.h>
#include <errno.h>
#include <stdio.h>

int main(void)
{
    lttfs_producer *producer = lttfs_producer_open(NULL);
    lttfs_marker *marker = producer ? lttfs_marker_register(producer, "app", "texts", "text %s n %u") : NULL;
    lttfs_marker *bare = marker ? lttfs_marker_register(producer, "app", "bare", "") : NULL;
    if (!bare) {
        char why[256];
        lttfs_last_error(why, sizeof why);
        fprintf(stderr, "values-check: %s\n", why);
        return 1;
    }
    int wrong = 0;
    struct lttfs_value prefix = { .string = "abcdef", .length = 3 };
    struct lttfs_value endless = { .string = "x", .length = UINT64_MAX };
    struct lttfs_value huge = { .string = "x", .length = 1ull << 40 };
    struct lttfs_value one[1] = { LTTFS_STR("alone") };
    char room[8] = "ij";
    struct lttfs_value past = { .string = room, .length = 5 };
    if (lttfs_record(marker, LTTFS_STR(NULL), LTTFS_UINT(1)) != 0)
        wrong++, fprintf(stderr, "values-check: NULL text refused\n");
    if (lttfs_record(marker, prefix, LTTFS_UINT(2)) != 0)
        wrong++, fprintf(stderr, "values-check: a shorter length refused\n");
    if (lttfs_record(marker, endless, LTTFS_UINT(3)) != -ENOBUFS)
        wrong++, fprintf(stderr, "values-check: a length of 2^64 - 1 not refused as lost\n");
    if (lttfs_record(marker, huge, LTTFS_UINT(4)) != -ENOBUFS)
        wrong++, fprintf(stderr, "values-check: a length of 2^40 not refused as lost\n");
    if (lttfs_record(marker, LTTFS_STR(""), LTTFS_UINT(5)) != 0)
        wrong++, fprintf(stderr, "values-check: an empty text refused\n");
    if (lttfs_record_values(marker, one, 1) != -EINVAL)
        wrong++, fprintf(stderr, "values-check: one value for two fields not refused\n");
    if (lttfs_record(marker, past, LTTFS_UINT(7)) != 0)
        wrong++, fprintf(stderr, "values-check: a length past the NUL refused\n");
    if (lttfs_record_values(bare, NULL, 0) != 0)
        wrong++, fprintf(stderr, "values-check: no values for no fields refused\n");
    if (lttfs_record_values(bare, one, 0) != 0)
        wrong++, fprintf(stderr, "values-check: no values (a pointer given) for no fields refused\n");
    if (lttfs_record_values(bare, one, 1) != -EINVAL)
        wrong++, fprintf(stderr, "values-check: one value for no fields not refused\n");
    errno = 0;
    if (lttfs_marker_register(producer, "app", "latin1", "caf\xe9 %d") != NULL || errno != EINVAL)
        wrong++, fprintf(stderr, "values-check: a format that is not UTF-8 not refused\n");
    lttfs_producer_close(producer);
    return wrong ? 1 : 0;
}
