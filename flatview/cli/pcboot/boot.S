/* boot: the boot vCPU of the pcboot example, at CPL3 in 64-bit mode.
 *
 * Entry: r15 = iterations, r14 = address of the workers' stop flag.
 * Per iteration it does what SeaBIOS does with the PAM registers (config space
 * through 0xcf8/0xcfc), shadows the BIOS, checks the read-only lock, grows and
 * shrinks the hotplug RAM, and reports checksums on ports 0x502-0x506.
 */
    .intel_syntax noprefix
    .code64
    .globl boot
boot:
    lea rsi, [rip + banner]
    mov dx, 0x3f8
1:  lodsb
    test al, al
    jz iter
    out dx, al
    jmp 1b
iter:
    mov eax, 0x80000058          /* make_bios_writable, PAM dword 1 */
    mov dx, 0xcf8
    out dx, eax
    mov eax, 0x33333000
    mov dx, 0xcfc
    out dx, eax
    mov eax, 0x8000005c          /* PAM dword 2 */
    mov dx, 0xcf8
    out dx, eax
    mov eax, 0x33333333
    mov dx, 0xcfc
    out dx, eax
    mov esi, 0xfffe0000          /* shadow 128 KiB of BIOS to 0xe0000 */
    mov edi, 0xe0000
    mov ecx, 0x4000
    rep movsq
    mov eax, 0x80000058          /* make_bios_readonly, PAM dword 1 */
    mov dx, 0xcf8
    out dx, eax
    mov eax, 0x11111000
    mov dx, 0xcfc
    out dx, eax
    mov eax, 0x8000005c          /* PAM dword 2 */
    mov dx, 0xcf8
    out dx, eax
    mov eax, 0x33111111
    mov dx, 0xcfc
    out dx, eax
    mov esi, 0xe0000             /* checksum the shadow -> 0x502 */
    mov ecx, 0x4000
    xor ebx, ebx
2:  add rbx, [rsi]
    add rsi, 8
    dec ecx
    jnz 2b
    mov eax, ebx
    mov dx, 0x502
    out dx, eax
    mov rax, 0xdeadbeef          /* write the read-only shadow: dropped */
    mov qword ptr ds:0xf0000, rax
    mov rax, qword ptr ds:0xf0000
    mov dx, 0x503
    out dx, eax
    mov byte ptr ds:0xa0000, 0x41 /* one write to the VGA window (MMIO) */
    mov eax, 8                   /* hotplug RAM: grow to 8 MiB */
    mov dx, 0x510
    out dx, eax
    mov rdi, 0x40200000          /* fill the new 6 MiB, checksum -> 0x504 */
    mov ecx, 0xc0000
    xor ebx, ebx
3:  mov [rdi], rdi
    add rbx, rdi
    add rdi, 8
    dec ecx
    jnz 3b
    mov eax, ebx
    mov dx, 0x504
    out dx, eax
    mov rsi, 0x40200000          /* read it back -> 0x505 */
    mov ecx, 0xc0000
    xor ebx, ebx
4:  add rbx, [rsi]
    add rsi, 8
    dec ecx
    jnz 4b
    mov eax, ebx
    mov dx, 0x505
    out dx, eax
    mov eax, 2                   /* hotplug RAM: shrink to 2 MiB */
    mov dx, 0x510
    out dx, eax
    mov rsi, 0x40000000          /* checksum what is left -> 0x506 */
    mov ecx, 0x40000
    xor ebx, ebx
5:  add rbx, [rsi]
    add rsi, 8
    dec ecx
    jnz 5b
    mov eax, ebx
    mov dx, 0x506
    out dx, eax
    mov eax, 0x80000058          /* PAM back to reset: everything to PCI */
    mov dx, 0xcf8
    out dx, eax
    xor eax, eax
    mov dx, 0xcfc
    out dx, eax
    mov eax, 0x8000005c
    mov dx, 0xcf8
    out dx, eax
    xor eax, eax
    mov dx, 0xcfc
    out dx, eax
    dec r15
    jnz iter
    mov qword ptr [r14], 1       /* stop the workers, then report done */
    mov dx, 0x512
    out dx, eax
    mov al, 0x06                 /* then ask for a reset (firmware mode: a second POST) */
    mov dx, 0xcf9
    out dx, al
6:  jmp 6b
banner:
    .asciz "flatview pcboot: shadowing BIOS\n"
