/*
    Cobalt Strike artefacts the RestyLink downloader fetched: the HTTP stager shellcode and the
    beacon's embedded configuration.
*/

rule RestyLink_CobaltStrike_HTTP_Stager_Shellcode
{
    meta:
        description = "Cobalt Strike / Metasploit reverse-HTTP(S) stager shellcode: the block_api prologue and the ROR13 hashes of LoadLibraryA, VirtualAlloc and the WinINet calls that fetch the beacon"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://github.com/rapid7/metasploit-framework/blob/master/external/source/shellcode/windows/x86/src/block/block_api.asm"
        score = 85
        attack = "T1105, T1071.001, T1620"
    strings:
        // cld; call start; pusha; mov ebp, esp; xor edx, edx; mov edx, fs:[edx+0x30]
        $prologue_x86 = { FC E8 ?? 00 00 00 60 89 E5 31 ?? 64 8B ?? 30 }
        // cld; and rsp, -16; call start; push r9; push r8; push rdx; push rcx; push rsi; xor rdx, rdx
        $prologue_x64 = { FC 48 83 E4 F0 E8 ?? 00 00 00 41 51 41 50 52 51 56 48 31 D2 }
        // push imm32 (x86) / mov r10d, imm32 (x64) of the API hashes.
        $api_load_library_x86 = { 68 4C 77 26 07 }
        $api_internet_open_x86 = { 68 3A 56 79 A7 }
        $api_internet_connect_x86 = { 68 57 89 9F C6 }
        $api_http_open_request_x86 = { 68 EB 55 2E 3B }
        $api_http_send_request_x86 = { 68 2D 06 18 7B }
        $api_internet_read_file_x86 = { 68 12 96 89 E2 }
        $api_virtual_alloc_x86 = { 68 58 A4 53 E5 }
        $api_load_library_x64 = { 41 BA 4C 77 26 07 }
        $api_internet_open_x64 = { 41 BA 3A 56 79 A7 }
        $api_internet_connect_x64 = { 41 BA 57 89 9F C6 }
        $api_http_open_request_x64 = { 41 BA EB 55 2E 3B }
        $api_http_send_request_x64 = { 41 BA 2D 06 18 7B }
        $api_internet_read_file_x64 = { 41 BA 12 96 89 E2 }
        $api_virtual_alloc_x64 = { 41 BA 58 A4 53 E5 }
        // push "net" / push "wini" (x86); mov r14, "wininet" (x64)
        $wininet_x86 = { 68 6E 65 74 00 68 77 69 6E 69 }
        $wininet_x64 = { 49 BE 77 69 6E 69 6E 65 74 00 }
    condition:
        filesize < 16MB
        and (
            (any of ($prologue_*) and 2 of ($api_*))
            or (any of ($wininet_*) and 4 of ($api_*))
            // five distinct hash pushes of this call sequence are a stager even without its prologue
            or 5 of ($api_*)
        )
}

rule RestyLink_CobaltStrike_Beacon_Config
{
    meta:
        description = "Cobalt Strike beacon configuration block (settings 1 BeaconType, 2 Port, 3 SleepTime in type-length-value form), in clear or single-byte XOR encoded as beacons embed it (0x69 in 3.x, 0x2e in 4.x)"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://github.com/fox-it/dissect.cobaltstrike/blob/main/dissect/cobaltstrike/beacon.py"
        score = 90
        attack = "T1071.001, T1573"
    strings:
        $config_clear = { 00 01 00 01 00 02 ?? ?? 00 02 00 01 00 02 ?? ?? 00 03 00 02 00 04 }
        // The first 6 bytes under every other key; the rest of the 22 is checked in the condition.
        $config_xor = "\x00\x01\x00\x01\x00\x02" xor(0x01-0xff)
    condition:
        $config_clear
        or for any i in (1..#config_xor): (
            // the key is the first byte (setting ids start with 0x00); check settings 2 and 3
            uint8(@config_xor[i] + 8) == uint8(@config_xor[i])
            and uint8(@config_xor[i] + 9) == uint8(@config_xor[i]) ^ 0x02
            and uint8(@config_xor[i] + 10) == uint8(@config_xor[i])
            and uint8(@config_xor[i] + 11) == uint8(@config_xor[i]) ^ 0x01
            and uint8(@config_xor[i] + 12) == uint8(@config_xor[i])
            and uint8(@config_xor[i] + 13) == uint8(@config_xor[i]) ^ 0x02
            and uint8(@config_xor[i] + 16) == uint8(@config_xor[i])
            and uint8(@config_xor[i] + 17) == uint8(@config_xor[i]) ^ 0x03
            and uint8(@config_xor[i] + 18) == uint8(@config_xor[i])
            and uint8(@config_xor[i] + 19) == uint8(@config_xor[i]) ^ 0x02
            and uint8(@config_xor[i] + 20) == uint8(@config_xor[i])
            and uint8(@config_xor[i] + 21) == uint8(@config_xor[i]) ^ 0x04
        )
}
