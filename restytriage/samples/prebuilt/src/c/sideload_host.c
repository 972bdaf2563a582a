/* sideload_host: stands for the legitimate, often signed, program a side-loading attack ships.
 *
 * Like many real programs it asks VERSION.dll for its own version information at start-up, so
 * Windows resolves VERSION.dll from the program's own folder first: a DLL of that name placed beside
 * it is loaded instead of the system one (T1574.002). The program itself is harmless.
 */
#include <windows.h>
#include <stdio.h>

int wmain(void)
{
    wchar_t self[MAX_PATH];
    DWORD handle = 0;
    if (GetModuleFileNameW(NULL, self, MAX_PATH) == 0)
        return 1;
    DWORD size = GetFileVersionInfoSizeW(self, &handle);
    wprintf(L"Update helper 4.1: version block of %lu bytes\n", (unsigned long)size);
    return 0;
}
