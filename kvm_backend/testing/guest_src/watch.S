/* watch: spin on one qword and report every change, at CPL3 in 64-bit mode.
 *
 * Entry registers: rdi = address watched, rsi = final value.
 * Each new value is reported with OUT 0x10 (low 32 bits); after the final
 * value it also does OUT 0x12 (done) and keeps watching.
 */
    .intel_syntax noprefix
    .code64
    .globl watch
watch:
    mov rbx, -1
1:  mov rax, [rdi]
    cmp rax, rbx
    je 1b
    mov rbx, rax
    mov dx, 0x10
    out dx, eax
    cmp rax, rsi
    jne 1b
    mov dx, 0x12
    out dx, eax
    jmp 1b
