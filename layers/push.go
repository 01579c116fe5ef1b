package layers

import (
	"encoding/binary"
	"math"
)

// push builds a push-constant block of 32-bit words in declaration order.
type push []byte

func (p push) u32(vs ...int) push {
	for _, v := range vs {
		p = binary.LittleEndian.AppendUint32(p, uint32(v))
	}
	return p
}

func (p push) f32(vs ...float32) push {
	for _, v := range vs {
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(v))
	}
	return p
}
