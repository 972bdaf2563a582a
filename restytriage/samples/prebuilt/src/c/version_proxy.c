/* version_proxy: an inert replica of a side-loaded proxy DLL named version.dll.
 *
 * The real thing exports version.dll's functions forwarded to the genuine C:\Windows\System32 copy
 * (so the host keeps working) and starts its own payload from DllMain: fetch a stage over HTTPS,
 * copy it to executable memory and run it. This replica keeps only that structure: the forwarded
 * exports (version_proxy.def), the stage URL and user agent as strings, and references to the
 * WinHTTP and memory functions in a table that nothing ever calls. DllMain does nothing.
 */
#include <windows.h>
#include <winhttp.h>

const char stage_url[] = "https://cdn.restylink.invalid/vUp3";
const wchar_t user_agent[] =
    L"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.110 Safari/537.36";

/* Kept only so the import table names what the real loader used; never called. */
__attribute__((used)) static const void *const imported_but_unused[] = {
    (const void *)WinHttpOpen,         (const void *)WinHttpConnect,
    (const void *)WinHttpOpenRequest,  (const void *)WinHttpSendRequest,
    (const void *)WinHttpReceiveResponse, (const void *)WinHttpReadData,
    (const void *)VirtualAlloc,        (const void *)VirtualProtect,
    (const void *)CreateThread,
};

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
