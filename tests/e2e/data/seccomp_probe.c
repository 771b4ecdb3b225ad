/* Tries the system calls named on the command line and prints, for each,
 * "NAME ok" or "NAME errno N". Used by the seccomp tests as a hostile
 * program in a container. A setuid copy also reports its euid ("euid"). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long r) {
    if (r < 0)
        printf("%s errno %d\n", name, errno);
    else
        printf("%s ok\n", name);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *n = argv[i];
        long r = 0;
        if (!strcmp(n, "unshare-user")) {
            r = unshare(CLONE_NEWUSER);
        } else if (!strcmp(n, "unshare-net")) {
            r = unshare(CLONE_NEWNET);
        } else if (!strcmp(n, "add_key")) {
            r = syscall(SYS_add_key, "user", "berth-probe", "x", 1, -2 /* session */);
        } else if (!strcmp(n, "keyctl")) {
            r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* user */, 0);
        } else if (!strcmp(n, "perf_event_open")) {
            struct perf_event_attr a;
            memset(&a, 0, sizeof a);
            a.size = sizeof a;
            a.type = PERF_TYPE_SOFTWARE;
            a.config = PERF_COUNT_SW_CPU_CLOCK;
            r = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
        } else if (!strcmp(n, "io_uring_setup")) {
            char params[120];
            memset(params, 0, sizeof params);
            r = syscall(SYS_io_uring_setup, 1, params);
        } else if (!strcmp(n, "personality")) {
            r = personality(READ_IMPLIES_EXEC);
            if (r >= 0)
                personality(0);
        } else if (!strcmp(n, "move_pages")) {
            r = syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0);
        } else if (!strcmp(n, "clone3")) {
            r = syscall(SYS_clone3, NULL, 0);
        } else if (!strcmp(n, "mkdir")) {
            r = mkdir("/tmp/probe-dir", 0755);
        } else if (!strcmp(n, "getpid")) {
            r = getpid();
        } else if (!strcmp(n, "euid")) {
            printf("euid %d\n", (int)geteuid());
            continue;
        } else {
            printf("%s unknown\n", n);
            continue;
        }
        report(n, r);
    }
    return 0;
}
