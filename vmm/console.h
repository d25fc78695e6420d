/* The user's side of the serial console: the terminal (raw mode while the
 * guest runs), stdin with the Ctrl-A escapes, and SIGINT/SIGTERM/SIGHUP. */
#ifndef MINIVMM_CONSOLE_H
#define MINIVMM_CONSOLE_H

struct vm;

/* Process-wide, once: raw mode when stdin is a terminal, restored at exit
 * and on fatal signals; blocks the signals the VM handles via signalfd. */
void console_setup(void);
void console_restore(void);

/* Per VM (device table hooks). */
int console_init(struct vm *vm);
void console_exit(struct vm *vm);

#endif
