// Intel ISA-L (Debian's libisal-dev): crc32_iscsi is CRC-32C (Castagnoli), hardware-accelerated, the checksum
// of TFRecord files.
#include <isa-l/crc.h>
