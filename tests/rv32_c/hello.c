/* Console, exit codes (return from main, or td_exit from deep inside). */
#include "hal.h"

#ifndef EXIT_CODE
#define EXIT_CODE 0
#endif

static void __attribute__((noinline)) leave_early(int code) { td_exit(code); }

int main(void)
{
    td_puts("hello, world\n");
    td_put_int(-2147483647 - 1);
    td_putc(' ');
    td_put_hex(0xdeadbeefu);
    td_putc('\n');
#ifdef EXIT_VIA_TD_EXIT
    leave_early(EXIT_CODE);
#endif
    return EXIT_CODE;
}
