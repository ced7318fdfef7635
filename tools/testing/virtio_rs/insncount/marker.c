// SPDX-License-Identifier: GPL-2.0
/*
 * marker: run in the guest to end one insncount window and start the next.
 * Its only work is the magic instruction insncount.c watches for,
 * nopl 0x21535256(%rax) (0f 1f 80 56 52 53 21, "VRS!"), then exit(0).
 * No libc: gcc -static -nostdlib -O2 -o marker marker.c
 */
void _start(void)
{
	__asm__ volatile(".byte 0x0f, 0x1f, 0x80, 0x56, 0x52, 0x53, 0x21\n\t"
			 "mov $60, %%eax\n\t"
			 "xor %%edi, %%edi\n\t"
			 "syscall"
			 ::: "memory");
	__builtin_unreachable();
}
