/* handover: our option ROM for firmware mode, run by SeaBIOS at CPL0 in real mode.
 *
 * SeaBIOS loads it from fw_cfg (file genroms/flatview.bin) into shadow RAM,
 * calls its init entry (nothing to set up), and boots it through the PnP header's
 * bootstrap entry vector: "Booting from ROM...".  The BEV asks the VMM to take the
 * machine over (a write of 1 to port 0x513) and halts; the VMM pauses every vCPU
 * and starts its 64-bit workload on all of them.  The two checksum bytes (the PnP
 * header's and the ROM's) are set by the build (handover_rom.py), not here.
 */
    .code16
    .text
    .globl rom
rom:
    .byte 0x55, 0xaa, 1          /* signature; size in 512-byte blocks */
    lret                          /* 0x03: init: nothing to set up */
    .org 0x1a
    .word pnp                     /* offset of the PnP expansion header */
    .org 0x20
pnp:
    .ascii "$PnP"
    .byte 1, 2                    /* revision; length in 16-byte units */
    .word 0                       /* no next header */
    .byte 0, 0                    /* reserved; header checksum */
    .long 0                       /* device ID */
    .word name, name              /* manufacturer, product name */
    .byte 0x01, 0x80, 0x00        /* device type: other mass storage */
    .byte 0x14                    /* indicators: IPL device, boots through the BEV */
    .word 0, 0, bev, 0, 0         /* BCV, disconnect vector, BEV, reserved, resources */
    .org 0x40
bev:
    mov $0x513, %dx
    mov $1, %al
    out %al, %dx                  /* hand the machine over to the VMM */
1:  cli
    hlt
    jmp 1b
name:
    .asciz "flatview handover"
    .org 0x1ff
    .byte 0                       /* ROM checksum */
