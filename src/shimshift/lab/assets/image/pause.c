/* The pod sandbox process of the lab's pause image (registry.k8s.io/pause:3.6 made locally).
 *
 * It holds the pod's namespaces open: it sleeps until a signal arrives, exits 0 on SIGINT or
 * SIGTERM (the runtime's stop), and reaps every child that is re-parented to it (it is PID 1 of
 * the pod when the PID namespace is shared). Built with gcc -static so the image needs no libc.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void on_child(int signo)
{
    (void)signo;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int install(int signo, void (*handler)(int))
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = signo == SIGCHLD ? SA_NOCLDSTOP | SA_RESTART : 0;
    return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("shimshift pause (registry.k8s.io/pause:3.6 stand-in)");
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not running as PID 1\n");
    }
    if (install(SIGINT, on_stop) != 0 || install(SIGTERM, on_stop) != 0 ||
        install(SIGCHLD, on_child) != 0) {
        perror("pause: sigaction");
        return 1;
    }
    /* Block the signals and wait with sigsuspend so that a signal arriving between the check of
     * stop_requested and the wait cannot be lost (which a plain pause() would allow). */
    sigset_t blocked, waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &blocked, &waiting) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGCHLD);
    while (!stop_requested) {
        sigsuspend(&waiting);
    }
    return 0;
}
