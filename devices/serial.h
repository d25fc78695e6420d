/* 8250/16550A UART on COM1 (I/O 0x3F8, IRQ 4): the guest's console. */
#ifndef MINIVMM_SERIAL_H
#define MINIVMM_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#define COM1_BASE 0x3f8
#define COM1_IRQ  4

struct vm;
struct serial;

int serial_init(struct vm *vm);
void serial_exit(struct vm *vm);
/* Queue input bytes for the guest; returns how many were taken (0 when the
 * receive FIFO is full or the guest has not enabled receive interrupts). */
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len);
/* eventfd that becomes readable when the guest has made room for input. */
int serial_rx_room_fd(struct serial *s);

#endif
