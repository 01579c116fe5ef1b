package layers

import (
	"fmt"

	"vktrain/vk"
)

// StepState is a small device buffer of uint32 words holding what changes from
// one training step to the next while the recorded step stays the same: the step
// counter and the random seed that dropout (and augmentation) derive their
// Philox streams from. The host rewrites it between submits (SetStep, SetSeed,
// SetWord: each writes the device copy at once, so call them only while no
// submission that reads the state is running); kernels read it as a read-only
// storage buffer (std430 `uint words[]`), so a stream recorded once sees new values
// on every submit.
//
// Layout (word indices):
//
//	0 StateStepLo  step, low 32 bits
//	1 StateStepHi  step, high 32 bits
//	2 StateSeedLo  seed, low 32 bits
//	3 StateSeedHi  seed, high 32 bits
//	4..15          reserved (zero): add fields here, e.g. a training flag
//
// The buffer is StateWords words long; a new field takes the next free index,
// named by a constant beside the ones below, and the kernels reading it declare
// the same layout.
type StepState struct {
	Name  string
	buf   *vk.Buffer
	words [StateWords]uint32
}

// Word indices of StepState.
const (
	StateStepLo = 0
	StateStepHi = 1
	StateSeedLo = 2
	StateSeedHi = 3
	StateWords  = 16 // words in the buffer, the reserved ones included
)

// NewStepState allocates a step state with every word zero (step 0, seed 0).
func (r *Runtime) NewStepState(name string) (*StepState, error) {
	b, err := r.Dev.NewHostBuffer(4*StateWords, name)
	if err != nil {
		return nil, err
	}
	st := &StepState{Name: name, buf: b}
	if err := st.flush(); err != nil {
		b.Free()
		return nil, err
	}
	return st, nil
}

func (st *StepState) flush() error { return st.buf.WriteUint32(0, st.words[:]) }

// SetWord sets word i on the host and on the device.
func (st *StepState) SetWord(i int, v uint32) error {
	if i < 0 || i >= StateWords {
		return fmt.Errorf("step state %q: word %d outside [0, %d)", st.Name, i, StateWords)
	}
	st.words[i] = v
	return st.buf.WriteUint32(i, []uint32{v})
}

// Word returns word i as last set (0 for an index out of range).
func (st *StepState) Word(i int) uint32 {
	if i < 0 || i >= StateWords {
		return 0
	}
	return st.words[i]
}

// SetStep sets the step counter (words StateStepLo, StateStepHi).
func (st *StepState) SetStep(step uint64) error {
	st.words[StateStepLo], st.words[StateStepHi] = uint32(step), uint32(step>>32)
	return st.buf.WriteUint32(StateStepLo, st.words[StateStepLo:StateStepHi+1])
}

// Step returns the step counter.
func (st *StepState) Step() uint64 {
	return uint64(st.words[StateStepLo]) | uint64(st.words[StateStepHi])<<32
}

// SetSeed sets the seed (words StateSeedLo, StateSeedHi).
func (st *StepState) SetSeed(seed uint64) error {
	st.words[StateSeedLo], st.words[StateSeedHi] = uint32(seed), uint32(seed>>32)
	return st.buf.WriteUint32(StateSeedLo, st.words[StateSeedLo:StateSeedHi+1])
}

// Seed returns the seed.
func (st *StepState) Seed() uint64 {
	return uint64(st.words[StateSeedLo]) | uint64(st.words[StateSeedHi])<<32
}

// Range is the state as a kernel binding (a read-only storage buffer).
func (st *StepState) Range() vk.Range { return st.buf.Whole() }

// Free releases the buffer.
func (st *StepState) Free() {
	if st != nil {
		st.buf.Free()
	}
}
