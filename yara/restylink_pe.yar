/*
    Windows PE payloads of the RestyLink chain: the Go-built downloader DLL and UPX packing
    (intact, and tampered so that `upx -d` refuses the file).
*/

import "pe"

rule RestyLink_Go_DLL_Network_Capability
{
    meta:
        description = "DLL built with Go (build info, build ID, runtime or cgo export markers) that carries networking code or request strings: the shape of the RestyLink Go downloader that fetched a Cobalt Strike stager"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://insight-jp.nttsecurity.com/post/102hojk/operation-restylink-apt-campaign-targeting-japanese-companies"
        score = 65
        attack = "T1105, T1071.001, T1574.001"
    strings:
        $go_buildinf = "\xff Go buildinf:"
        $go_buildid = "Go build ID: \""
        $go_runtime = "runtime.goexit"
        $go_cgo_export = "_cgo_dummy_export"
        // Function names survive `-s -w` stripping in the pclntab.
        $net_http_client = "net/http.(*Client).do"
        $net_http_transport = "net/http.(*Transport).roundTrip"
        $net_dialer = "net.(*Dialer).DialContext"
        $net_tls = "crypto/tls.(*Conn).Handshake"
        $net_winhttp = "WinHttpOpen"
        $net_wininet = "InternetOpenUrl"
        // Request-building code that keeps no net package: a URL beside a request line or user agent.
        $url = /https?:\/\/[a-zA-Z0-9][a-zA-Z0-9.\-]{1,253}(:[0-9]{1,5})?\/[\x21-\x7e]{0,256}/
        $request_line = " HTTP/1.1\r\n"
        $user_agent = "Mozilla/5.0 ("
    condition:
        uint16(0) == 0x5A4D and pe.is_dll()
        and 2 of ($go_*)
        and (any of ($net_*) or ($url and ($request_line or $user_agent)))
}

rule RestyLink_UPX_Packed_PE
{
    meta:
        description = "PE packed with UPX, markers intact (UPX0/UPX1 sections and the UPX! header): unpackable with upx -d"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://github.com/upx/upx/blob/devel/src/stub/src/i386-win32.pe.S"
        score = 20
        attack = "T1027.002"
    strings:
        $magic = "UPX!"
    condition:
        uint16(0) == 0x5A4D and pe.is_pe
        and for any s in pe.sections: (s.name == "UPX0")
        and for any s in pe.sections: (s.name == "UPX1")
        and $magic
}

rule RestyLink_UPX_Packed_PE_Tampered
{
    meta:
        description = "PE whose entry point is the UPX decompression stub while the UPX section names or UPX! header were erased or renamed: packed, and altered so that upx -d refuses it"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://github.com/upx/upx/blob/devel/src/stub/src/amd64-win64.pe.S"
        score = 65
        attack = "T1027.002"
    strings:
        $magic = "UPX!"
        // pusha; mov esi, imm32; lea edi, [esi+disp32]
        $stub_x86 = { 60 BE ?? ?? ?? ?? 8D BE ?? ?? ?? ?? }
        // DllMain reason check (cmp byte [esp+8], 1; jnz) before the same stub
        $stub_x86_dll = { 80 7C 24 08 01 0F 85 ?? ?? ?? ?? 60 BE ?? ?? ?? ?? 8D BE }
        // push rbx, rsi, rdi, rbp; lea rsi, [rip+disp32]; lea rdi, [rsi+disp32]
        $stub_x64 = { 53 56 57 55 48 8D 35 ?? ?? ?? ?? 48 8D BE ?? ?? ?? ?? }
        // spill rcx/rdx/r8; cmp dl, 1; jnz; then the same stub
        $stub_x64_dll = { 48 89 4C 24 08 48 89 54 24 10 4C 89 44 24 18 80 FA 01 0F 85 ?? ?? ?? ?? 53 56 57 55 48 8D 35 }
    condition:
        uint16(0) == 0x5A4D and pe.is_pe
        and ($stub_x86 at pe.entry_point or $stub_x86_dll at pe.entry_point
             or $stub_x64 at pe.entry_point or $stub_x64_dll at pe.entry_point)
        and not (
            for any s in pe.sections: (s.name == "UPX0")
            and for any s in pe.sections: (s.name == "UPX1")
            and $magic
        )
}
