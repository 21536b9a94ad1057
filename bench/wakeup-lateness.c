/* bench/wakeup-lateness.c - how late a real-time thread wakes on one core of this machine: the floor under
 * every timing a benchmark pinned there takes. It sleeps to absolute deadlines one OPUS64 frame (1.333 ms)
 * apart, as `tutti loadgen` does, and counts how late it woke.
 *
 * Usage: wakeup-lateness SECONDS   (run it pinned and real-time: taskset -c 1 chrt -f 50 ...)
 * Prints one line: wake-ups, how many came more than 0.15 ms / 1 ms late, the maximum, and the average time
 * between wake-ups more than 1 ms late (a periodic cause shows as a steady interval).
 * Built and run by bench/jam-latency.sh; see docs/perf.md ("The instrument's own core").
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ns_of(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: wakeup-lateness SECONDS\n");
        return 2;
    }
    const long long period = 1333333, seconds = atoi(argv[1]);
    const long long wakeups = seconds * 1000000000LL / period;
    struct timespec next, now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long long over_150us = 0, over_1ms = 0, max = 0, first_1ms = -1, last_1ms = -1;
    for (long long i = 0; i < wakeups; i++) {
        next.tv_nsec += period;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long late = ns_of(now) - ns_of(next);
        if (late > max) max = late;
        if (late > 150000) over_150us++;
        if (late > 1000000) {
            /* a stall that spans several deadlines counts once */
            if (last_1ms < 0 || ns_of(now) - last_1ms > 10000000LL) {
                over_1ms++;
                if (first_1ms < 0) first_1ms = ns_of(now);
            }
            last_1ms = ns_of(now);
        }
    }
    printf("%lld wake-ups in %lld s: %lld more than 0.15 ms late, %lld stalls over 1 ms", wakeups, seconds,
           over_150us, over_1ms);
    if (over_1ms > 1)
        printf(" (every %.2f s)", (double)(last_1ms - first_1ms) / 1e9 / (double)(over_1ms - 1));
    printf(", max %.2f ms\n", (double)max / 1e6);
    return 0;
}
