/* carrier: stands for a dropper that ships its payload as a resource.
 *
 * The payload (resource 101, RCDATA) is another program; a real dropper would write it to disk and
 * run it. This replica only reports the resource's size: it never writes or starts anything.
 */
#include <windows.h>
#include <stdio.h>

int main(void)
{
    HRSRC found = FindResourceA(NULL, MAKEINTRESOURCEA(101), MAKEINTRESOURCEA(10)); /* RT_RCDATA */
    printf("bundled component: %lu bytes\n", found ? (unsigned long)SizeofResource(NULL, found) : 0ul);
    return 0;
}
