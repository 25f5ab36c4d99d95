/* scribble: write every page of a range in a loop, at CPL3 in 64-bit mode.
 *
 * Entry registers: rdi = first page, rsi = number of pages,
 *   r8 = byte offset written in each page (8 + 8 * vCPU index),
 *   r10 = stop flag (stable memory), r12 = this vCPU's progress counter.
 * Each pass increments the qword at [page + r8] of every page; at stop the vCPU
 * does OUT 0x12 (done).
 */
    .intel_syntax noprefix
    .code64
    .globl scribble
scribble:
    xor ecx, ecx
1:  mov rax, rcx
    shl rax, 12
    add rax, rdi
    inc qword ptr [rax + r8]
    inc rcx
    cmp rcx, rsi
    jb 1b
    inc qword ptr [r12]
    cmp qword ptr [r10], 0
    je scribble
    mov dx, 0x12
    out dx, eax
    jmp scribble
