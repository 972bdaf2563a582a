/* fsum: a small, benign console tool (the control sample for packed-but-harmless executables).
 *
 * Prints the size and Adler-32 checksum of each file named on the command line. It only reads the
 * files it is given; it has no network, process or registry code.
 */
#include <stdio.h>
#include <string.h>

#define ADLER_MOD 65521u

static unsigned long adler32_update(unsigned long adler, const unsigned char *data, size_t size)
{
    unsigned long low = adler & 0xffffu, high = (adler >> 16) & 0xffffu;
    for (size_t i = 0; i < size; i++) {
        low = (low + data[i]) % ADLER_MOD;
        high = (high + low) % ADLER_MOD;
    }
    return (high << 16) | low;
}

static int sum_file(const char *path)
{
    unsigned char buffer[4096];
    unsigned long adler = 1, total = 0;
    size_t got;
    FILE *fh = fopen(path, "rb");
    if (fh == NULL) {
        fprintf(stderr, "fsum: cannot open %s\n", path);
        return 1;
    }
    while ((got = fread(buffer, 1, sizeof buffer, fh)) > 0) {
        adler = adler32_update(adler, buffer, got);
        total += (unsigned long)got;
    }
    fclose(fh);
    printf("%08lx  %10lu  %s\n", adler, total, path);
    return 0;
}

int main(int argc, char **argv)
{
    int failures = 0;
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        puts("fsum 1.2 - print the size and Adler-32 checksum of files\n"
             "usage: fsum FILE...\n"
             "Checksums are for spotting copy errors, not for security.");
        return argc < 2 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++)
        failures += sum_file(argv[i]);
    return failures ? 1 : 0;
}
