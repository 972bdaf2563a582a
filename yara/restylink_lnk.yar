/*
    Windows shortcuts (MS-SHLLINK) of the RestyLink chain.

    StringData (arguments, working folder, icon location) is UTF-16LE when the IsUnicode flag is
    set and ANSI otherwise; LinkInfo paths are ANSI: hence `ascii wide` on every text string.
    Conventions of the team's rules: meta `score` 0-100, ATT&CK ids in `attack`, comma-separated.
*/

private rule RT_LNK
{
    meta:
        description = "MS-SHLLINK header: HeaderSize 0x4C and LinkCLSID 00021401-0000-0000-C000-000000000046"
    condition:
        uint32(0) == 0x0000004C and uint32(4) == 0x00021401 and uint32(8) == 0x00000000
        and uint32(12) == 0x000000C0 and uint32(16) == 0x46000000
}

rule RestyLink_LNK_Shell_Writes_Office_Startup
{
    meta:
        description = "Shortcut runs a command shell that writes into an Office start-up folder (Word STARTUP, Excel XLSTART or the Normal template): Office loads what lands there each time it starts"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://insight-jp.nttsecurity.com/post/102hojk/operation-restylink-apt-campaign-targeting-japanese-companies"
        score = 85
        attack = "T1137.001, T1059.003, T1204.002"
    strings:
        $shell_cmd = "cmd.exe" ascii wide nocase
        $shell_cmd_short = "cmd /" ascii wide nocase
        $shell_comspec = "%comspec%" ascii wide nocase
        $shell_powershell = "powershell" ascii wide nocase
        $dir_word = "\\Microsoft\\Word\\STARTUP" ascii wide nocase
        $dir_excel = "\\Microsoft\\Excel\\XLSTART" ascii wide nocase
        $dir_normal = "\\Microsoft\\Templates\\Normal.dot" ascii wide nocase
        $write_copy = "copy " ascii wide nocase
        $write_move = "move " ascii wide nocase
        $write_echo = "echo " ascii wide nocase
        $write_type = "type " ascii wide nocase
        $write_redirect = ">%" ascii wide
        $write_redirect_space = "> %" ascii wide
        $write_redirect_quote = ">\"%" ascii wide
        $write_certutil = "certutil" ascii wide nocase
        $write_expand = "expand " ascii wide nocase
        $write_findstr = "findstr" ascii wide nocase
        $write_ps_copy = "Copy-Item" ascii wide nocase
        $write_ps_move = "Move-Item" ascii wide nocase
        $write_ps_set = "Set-Content" ascii wide nocase
        $write_ps_out = "Out-File" ascii wide nocase
        $write_ps_bytes = "WriteAllBytes" ascii wide nocase
    condition:
        RT_LNK and any of ($shell_*) and any of ($dir_*) and any of ($write_*)
}

rule RestyLink_LNK_Appended_OLE_or_PDF
{
    meta:
        description = "Shortcut carrying an OLE compound file (Word template or document) or a PDF inside or after its structure, raw or base64: the RestyLink LNK brought its .dot template and decoy PDF this way"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://insight-jp.nttsecurity.com/post/102hojk/operation-restylink-apt-campaign-targeting-japanese-companies"
        score = 75
        attack = "T1027.009, T1204.002"
    strings:
        $ole = { D0 CF 11 E0 A1 B1 1A E1 }
        $pdf = "%PDF-"
        $ole_base64 = "0M8R4KGxGuE" ascii wide
        $pdf_base64 = "JVBERi0" ascii wide
    condition:
        RT_LNK and any of them in (0x4C..filesize)
}

rule RestyLink_LNK_Command_Carves_Itself
{
    meta:
        description = "Shortcut whose command line looks for a .lnk file and cuts data out of it (findstr, more +N, certutil -decode, PowerShell byte reads): the shortcut is its own dropper"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://insight-jp.nttsecurity.com/post/102hojk/operation-restylink-apt-campaign-targeting-japanese-companies"
        score = 75
        attack = "T1027.009, T1140, T1059.003"
    strings:
        $self = ".lnk" ascii wide nocase
        $cut_findstr = "findstr" ascii wide nocase
        $cut_more = "more +" ascii wide nocase
        $cut_certutil = "certutil" ascii wide nocase
        $cut_read_bytes = "ReadAllBytes" ascii wide nocase
        $cut_get_content = "Get-Content" ascii wide nocase
        $cut_encoding_byte = "-Encoding Byte" ascii wide nocase
    condition:
        RT_LNK and $self in (0x4C..filesize) and any of ($cut_*)
}

rule RestyLink_Archive_Shortcut_With_Document_Extension
{
    meta:
        description = "ZIP archive or disc image holding a shortcut named like a document (invoice.pdf.lnk): with extensions hidden the victim sees a PDF or Word file"
        author = "restytriage team"
        date = "2026-12-04"
        reference = "https://attack.mitre.org/techniques/T1036/007/"
        score = 75
        attack = "T1036.007, T1204.002, T1566.001, T1553.005"
    strings:
        // Names as ZIP headers, ISO 9660 / Rock Ridge and 8-bit UDF store them, and as Joliet and
        // 16-bit UDF do (UCS-2 big-endian); optional padding between the two extensions.
        $name = /\.(pdf|docx?|docm|dotx?|xlsx?|xlsm|pptx?|rtf|txt|jpe?g|png|hwp)[ _]{0,64}\.lnk/ nocase ascii wide
        $name_ucs2be = /\x00\.(\x00[pP]\x00[dD]\x00[fF]|\x00[dD]\x00[oO]\x00[cC](\x00[xXmM])?|\x00[xX]\x00[lL]\x00[sS](\x00[xXmM])?|\x00[rR]\x00[tT]\x00[fF]|\x00[tT]\x00[xX]\x00[tT]|\x00[jJ]\x00[pP]\x00[gG])(\x00[ _]){0,64}\x00\.\x00[lL]\x00[nN]\x00[kK]/
        $iso9660 = "CD001"
        $udf = "BEA01"
    condition:
        (uint32(0) == 0x04034B50 and $name)
        or (($iso9660 at 0x8001 or $udf at 0x8001) and ($name or $name_ucs2be))
}
