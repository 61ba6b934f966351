/* Lets selftest.c run as an ordinary Linux program (the reference build): the runtime's console
 * functions on stdout. Compiled with -DHOSTED, which rt.h does not need to know about. */
#include <stdio.h>
#include <string.h>

void rt_putc(char c) { putchar(c); }
void rt_puts(const char *s) { fputs(s, stdout); }
void rt_putu(unsigned long v) { printf("%lu", v); }
void rt_puthex(unsigned long v) { printf("0x%016lx", v); }
