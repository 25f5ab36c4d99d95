/* sweep: the race-harness loop, run at CPL3 in 64-bit mode, position independent.
 *
 * Entry registers (set by the host per vCPU):
 *   rdi = first page of the watched range    rsi = number of pages
 *   r8  = this vCPU's write counter (inside the watched range)
 *   r10 = stop flag (stable memory)          r12 = this vCPU's progress counter (stable)
 *   r9  = 0 (the guest's own count of writes to [r8])
 * Every page of the range holds its own guest-physical address in its first
 * qword (identity mapping).  A mismatch is reported with OUT 0x10 (low 32 bits
 * of the address); at stop the vCPU reports r9 with OUT 0x11, then OUT 0x12.
 */
    .intel_syntax noprefix
    .code64
    .globl sweep
sweep:
    xor ecx, ecx
1:  mov rax, rcx
    shl rax, 12
    add rax, rdi
    mov rbx, [rax]
    cmp rbx, rax
    jne 3f
2:  inc rcx
    cmp rcx, rsi
    jb 1b
    inc qword ptr [r8]
    inc r9
    inc qword ptr [r12]
    cmp qword ptr [r10], 0
    je sweep
    mov eax, r9d
    mov dx, 0x11
    out dx, eax
    mov dx, 0x12
    out dx, eax
    jmp sweep
3:  mov dx, 0x10
    out dx, eax
    jmp 2b
