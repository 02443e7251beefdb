/* Reports the C layout of SpeexBits so that a Rust test can compare it with the hand-written
 * declaration in ffi.rs (sizes and field offsets, in bytes). */
#include <stddef.h>
#include <speex/speex_bits.h>

void sipcast_speex_bits_layout(size_t out[11]) {
    out[0] = sizeof(SpeexBits);
    out[1] = _Alignof(SpeexBits);
    out[2] = offsetof(SpeexBits, chars);
    out[3] = offsetof(SpeexBits, nbBits);
    out[4] = offsetof(SpeexBits, charPtr);
    out[5] = offsetof(SpeexBits, bitPtr);
    out[6] = offsetof(SpeexBits, owner);
    out[7] = offsetof(SpeexBits, overflow);
    out[8] = offsetof(SpeexBits, buf_size);
    out[9] = offsetof(SpeexBits, reserved1);
    out[10] = offsetof(SpeexBits, reserved2);
}
