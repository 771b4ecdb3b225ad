/* A hostile container's watcher: for a number of seconds it looks at every
 * process that appears in the container's /proc and tries what the
 * CVE-2019-5736 and CVE-2024-21626 classes of attack try on a process that
 * joins the container: open its executable for writing, follow its open
 * descriptors out of the container, read its environment. It prints one line
 * of counts at the end. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned char seen[1 << 16];

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    const char *token = argc > 2 ? argv[2] : "HOST_TOKEN";
    const char *secret_dir = argc > 3 ? argv[3] : "host-secret-dir";
    long pids = 0, exe_write = 0, exe_host = 0, fd_host = 0, fd_open = 0, env_token = 0;
    pid_t me = getpid();
    time_t end = time(NULL) + seconds;
    char path[256], link[4096], buf[65536];
    while (time(NULL) < end) {
        DIR *proc = opendir("/proc");
        if (!proc) return 2;
        struct dirent *d;
        while ((d = readdir(proc))) {
            int pid = atoi(d->d_name);
            if (pid <= 1 || pid == me) continue;
            if (!seen[pid & 0xffff]) { seen[pid & 0xffff] = 1; pids++; }
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_WRONLY);
            if (fd >= 0) { exe_write++; close(fd); }
            ssize_t n = readlink(path, link, sizeof link - 1);
            if (n > 0) {
                link[n] = 0;
                if (strstr(link, "berth")) exe_host++;
            }
            snprintf(path, sizeof path, "/proc/%d/fd", pid);
            DIR *fds = opendir(path);
            if (fds) {
                struct dirent *f;
                while ((f = readdir(fds))) {
                    int num = atoi(f->d_name);
                    if (f->d_name[0] == '.' || num <= 2) continue;
                    char fdpath[300];
                    snprintf(fdpath, sizeof fdpath, "%s/%s", path, f->d_name);
                    n = readlink(fdpath, link, sizeof link - 1);
                    if (n > 0) {
                        link[n] = 0;
                        if (strstr(link, secret_dir)) fd_host++;
                    }
                    int o = open(fdpath, O_RDONLY);
                    if (o >= 0) { fd_open++; close(o); }
                }
                closedir(fds);
            }
            snprintf(path, sizeof path, "/proc/%d/environ", pid);
            fd = open(path, O_RDONLY);
            if (fd >= 0) {
                n = read(fd, buf, sizeof buf - 1);
                if (n > 0) {
                    buf[n] = 0;
                    for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = '\n';
                    if (strstr(buf, token)) env_token++;
                }
                close(fd);
            }
        }
        closedir(proc);
    }
    printf("pids=%ld exe_write=%ld exe_host=%ld fd_host=%ld fd_open=%ld env_token=%ld\n",
           pids, exe_write, exe_host, fd_host, fd_open, env_token);
    return 0;
}
