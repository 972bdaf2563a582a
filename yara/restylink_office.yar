/*
    Office documents and templates of the RestyLink chain.

    Module source inside a compound file is MS-OVBA compressed (flag bytes every 8 tokens, repeats
    replaced by copy tokens), so macro text is matched on the decompressed source that the OLE
    analyzer hands on (and on .bas/.vba files), while the container rule keys on structure: the
    Word FIB template flag and the compressed "Attribute VB_Name" header every module starts with.
*/

rule RestyLink_Word_Template_With_Macros
{
    meta:
        description = "Word 97-2003 template (.dot, FIB fDot set) carrying a VBA project: dropped into Word's STARTUP folder it runs its AutoExec macro every time Word starts"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://insight-jp.nttsecurity.com/post/102hojk/operation-restylink-apt-campaign-targeting-japanese-companies"
        score = 60
        attack = "T1137.001, T1059.005"
    strings:
        // FibBase: wIdent 0xA5EC, nFib 0x00C1 (Word 97 and later); fDot is bit 0 of the flags at +0x0A.
        $fib = { EC A5 C1 00 }
        // The compressed start of every module: flag byte 0, "Attribut", flag byte 0, "e VB_Nam".
        $vba_module = { 00 41 74 74 72 69 62 75 74 00 65 20 56 42 5F 4E 61 6D }
        $vba_project = "_VBA_PROJECT" wide
        $word_stream = "WordDocument" wide
    condition:
        uint32be(0) == 0xD0CF11E0 and uint32be(4) == 0xA1B11AE1
        and $word_stream and $vba_project and $vba_module
        // The WordDocument stream is at least 4096 bytes, so it starts on a 512-byte sector.
        and for any i in (1..#fib): (@fib[i] % 512 == 0 and uint8(@fib[i] + 0x0A) & 0x01 == 0x01)
}

rule RestyLink_VBA_AutoExec_Download_Execute
{
    meta:
        description = "VBA source with an auto-exec entry point (AutoExec, AutoOpen, Document_Open, ...) that downloads from the Internet and starts a program"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://insight-jp.nttsecurity.com/post/102hojk/operation-restylink-apt-campaign-targeting-japanese-companies"
        score = 80
        attack = "T1204.002, T1059.005, T1105"
    strings:
        $end_procedure = /\bEnd[ \t]+(Sub|Function)\b/ nocase
        $auto = /\b(Sub|Function)[ \t]+(AutoOpen|AutoExec|AutoNew|AutoClose|AutoExit|Auto_Open|Auto_Close|Document_Open|Document_New|Document_Close|Workbook_Open|Workbook_Activate)[ \t]*\(/ nocase
        $download_api = "URLDownloadToFile" nocase
        $download_xmlhttp = "XMLHTTP" nocase
        $download_winhttp = "WinHttpRequest" nocase
        $download_wininet = "InternetOpenUrl" nocase
        $download_webclient = "Net.WebClient" nocase
        $download_file = "DownloadFile" nocase
        $download_string = "DownloadString" nocase
        $download_iwr = "Invoke-WebRequest" nocase
        $download_bits = "bitsadmin" nocase
        $download_bits_ps = "Start-BitsTransfer" nocase
        $download_certutil = "-urlcache" nocase
        $exec_shell = /\bShell[ \t]*(\(|[ \t]["A-Za-z_])/ nocase
        $exec_wscript = "WScript.Shell" nocase
        $exec_shellexecute = "ShellExecute" nocase
        $exec_shell_app = "Shell.Application" nocase
        $exec_createprocess = "CreateProcess" nocase
        $exec_winexec = "WinExec" nocase
        $exec_wmi = "Win32_Process" nocase
        $exec_start_process = "Start-Process" nocase
    condition:
        filesize < 4MB and not uint16(0) == 0x5A4D
        and $auto and $end_procedure and any of ($download_*) and any of ($exec_*)
}

rule RestyLink_Office_Remote_Template
{
    meta:
        description = "Document whose attached template is fetched from a remote URL or UNC share (settings.xml.rels attachedTemplate relationship, or RTF \\template): Word downloads and runs it on opening"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://attack.mitre.org/techniques/T1221/"
        score = 80
        attack = "T1221"
    strings:
        // Either attribute order inside the one <Relationship> element. file:/// (three slashes) is
        // a local template, what Word itself writes for documents made from a local .dotx.
        $type_then_target = /relationships\/attachedTemplate"[^>]{0,512}Target="[ ]*(https?:\/\/|\\\\|file:\/\/[^\/])/ nocase
        $target_then_type = /Target="[ ]*(https?:\/\/|\\\\|file:\/\/[^\/])[^"]{1,1024}"[^>]{0,512}relationships\/attachedTemplate"/ nocase
        $external = "TargetMode=\"External\"" nocase
        // RTF: {\*\template http://...} or a UNC path written with escaped backslashes.
        $rtf_template = /\{\\\*\\template[ \t\r\n]{0,8}(https?:\/\/|\\\\\\\\)/ nocase
    condition:
        (($type_then_target or $target_then_type) and $external)
        or (uint32be(0) == 0x7B5C7274 and $rtf_template)
}
