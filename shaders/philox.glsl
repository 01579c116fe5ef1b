// philox.glsl: Philox4x32-10 (Salmon et al., SC 2011; Random123's philox4x32),
// bit for bit the same as vktrain/layers/ref.Philox4x32.
#ifndef PHILOX_GLSL
#define PHILOX_GLSL
#extension GL_EXT_control_flow_attributes : require

// philox4x32 returns the Philox4x32-10 block of counter c under key k: ten
// rounds, the key bumped by (0x9E3779B9, 0xBB67AE85) between rounds.
uvec4 philox4x32(uvec4 c, uvec2 k) {
    [[unroll]] for (int round = 0; round < 10; round++) {
        if (round > 0) k += uvec2(0x9E3779B9u, 0xBB67AE85u);
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, c.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// philox_stream is the counter layout that dropout and augmentation share
// (ref.philoxStream): counter (word, tag, step lo, step hi), key (seed lo, seed hi).
uvec4 philox_stream(uint word, uint tag, uvec2 step, uvec2 seed) {
    return philox4x32(uvec4(word, tag, step.x, step.y), seed);
}
#endif
