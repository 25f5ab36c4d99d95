"""The guest of the pcboot example: ``boot.S`` (the boot vCPU) and the workers.

``BOOT`` is the ``.text`` of ``boot.S`` beside this file (``as --64`` then
``objcopy -O binary -j .text``; ``tests/test_pcboot_example.py`` re-checks it).
The workers run ``kvm_backend.testing.guest_code.SWEEP`` from 0xc0000, inside the PAM
range being reshaped.
"""

from __future__ import annotations

BOOT = bytes.fromhex(
    "488d356a01000066baf803ac84c07403eeebf8b85800008066baf80cefb80030333366bafc0c"
    "efb85c00008066baf80cefb83333333366bafc0cefbe0000feffbf00000e00b900400000f348"
    "a5b85800008066baf80cefb80010111166bafc0cefb85c00008066baf80cefb81111113366ba"
    "fc0cefbe00000e00b90040000031db48031e4883c608ffc975f589d866ba0205ef48b8efbead"
    "de000000004889042500000f00488b042500000f0066ba0305efc6042500000a0041b8080000"
    "0066ba1005ef48c7c700002040b900000c0031db48893f4801fb4883c708ffc975f289d866ba"
    "0405ef48c7c600002040b900000c0031db48031e4883c608ffc975f589d866ba0505efb80200"
    "000066ba1005ef48c7c600000040b90000040031db48031e4883c608ffc975f589d866ba0605"
    "efb85800008066baf80cef31c066bafc0cefb85c00008066baf80cef31c066bafc0cef49ffcf"
    "0f85b7feffff49c7060100000066ba1205efb00666baf90ceeebfe666c617476696577207063"
    "626f6f743a20736861646f77696e672042494f530a00"
)
