/* Looks in its session keyring for the key a host process put in its own
 * ("berth-host-secret") and prints what it finds: "notfound", or the key. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long id = syscall(SYS_keyctl, 10 /* KEYCTL_SEARCH */, -3 /* session */, "user",
                      "berth-host-secret", 0);
    if (id < 0) {
        printf("notfound\n");
        return 0;
    }
    char buf[256];
    long n = syscall(SYS_keyctl, 11 /* KEYCTL_READ */, id, buf, sizeof buf - 1);
    if (n < 0) {
        printf("found-unreadable\n");
        return 0;
    }
    buf[n] = 0;
    printf("read:%s\n", buf);
    return 0;
}
