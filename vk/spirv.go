package vk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// BindingKind is the descriptor type of a kernel binding.
type BindingKind int

// Binding kinds a compute kernel may declare in descriptor set 0.
const (
	StorageBuffer      BindingKind = iota // buffer { ... } (readonly or not)
	UniformTexelBuffer                    // samplerBuffer / textureBuffer: read-only texels (RGBA32F)
	UniformBuffer                         // uniform { ... }
)

func (k BindingKind) String() string {
	switch k {
	case StorageBuffer:
		return "storage buffer"
	case UniformTexelBuffer:
		return "uniform texel buffer"
	case UniformBuffer:
		return "uniform buffer"
	}
	return fmt.Sprintf("BindingKind(%d)", int(k))
}

// BindingInfo is one binding of descriptor set 0, as the shader declares it.
type BindingInfo struct {
	Binding  uint32
	Kind     BindingKind
	ReadOnly bool
	Name     string
}

// Reflection is what a kernel's SPIR-V declares: its bindings (sorted by binding
// number), push-constant block size, specialization constant IDs and local size.
type Reflection struct {
	Bindings  []BindingInfo
	PushBytes int
	SpecIDs   []uint32
	LocalSize [3]uint32
}

// SPIR-V opcodes, decorations and storage classes used by Reflect.
const (
	opName             = 5
	opEntryPoint       = 15
	opFunction         = 54
	opFunctionEnd      = 56
	execModelGLCompute = 5
	opExecutionMode    = 16
	opTypeInt          = 21
	opTypeFloat        = 22
	opTypeVector       = 23
	opTypeMatrix       = 24
	opTypeImage        = 25
	opTypeSampledImg   = 27
	opTypeArray        = 28
	opTypeRuntimeArr   = 29
	opTypeStruct       = 30
	opTypePointer      = 32
	opConstant         = 43
	opVariable         = 59
	opDecorate         = 71
	opMemberDecorate   = 72
	decBlock           = 2
	decBufferBlock     = 3
	decArrayStride     = 6
	decSpecID          = 1
	decNonWritable     = 24
	decBinding         = 33
	decDescriptorSet   = 34
	decOffset          = 35
	scUniformConstant  = 0
	scUniform          = 2
	scPushConstant     = 9
	scStorageBuffer    = 12
	execLocalSize      = 17
	dimBuffer          = 5
)

type spvType struct {
	op    uint32
	words []uint32 // operands after the result id
}

// Reflect parses a SPIR-V module and returns what a pipeline needs to know about
// it. It rejects modules that are not SPIR-V or declare descriptor sets other than 0.
func Reflect(code []byte) (*Reflection, error) {
	if len(code) < 20 || len(code)%4 != 0 {
		return nil, fmt.Errorf("spirv: %d bytes is not a SPIR-V module (needs a 20-byte header and whole words)", len(code))
	}
	words := make([]uint32, len(code)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	if words[0] != 0x07230203 {
		return nil, fmt.Errorf("spirv: bad magic number %#08x", words[0])
	}
	types := map[uint32]spvType{}
	consts := map[uint32]uint32{}
	names := map[uint32]string{}
	type varInfo struct{ ptrType, class uint32 }
	vars := map[uint32]varInfo{}
	decor := map[uint32]map[uint32]uint32{}          // id -> decoration -> first literal
	memberDecor := map[uint32]map[[2]uint32]uint32{} // struct -> (member, decoration) -> literal
	ref := &Reflection{}
	bound := words[3]
	var entry bool
	var functions, ends int
	last := uint32(0)
	for i := 5; i < len(words); {
		n := int(words[i] >> 16)
		op := words[i] & 0xffff
		if n == 0 || i+n > len(words) {
			return nil, fmt.Errorf("spirv: malformed instruction at word %d", i)
		}
		ins := words[i+1 : i+n]
		i += n
		last = op
		switch op {
		case opEntryPoint:
			if len(ins) >= 3 && ins[0] == execModelGLCompute && spvString(ins[2:]) == "main" {
				entry = true
			}
		case opFunction:
			functions++
			if len(ins) >= 2 && ins[1] >= bound {
				return nil, fmt.Errorf("spirv: result id %d beyond the module's bound %d", ins[1], bound)
			}
		case opFunctionEnd:
			ends++
		case opName:
			if len(ins) >= 2 {
				names[ins[0]] = spvString(ins[1:])
			}
		case opExecutionMode:
			if len(ins) >= 5 && ins[1] == execLocalSize {
				ref.LocalSize = [3]uint32{ins[2], ins[3], ins[4]}
			}
		case opTypeInt, opTypeFloat, opTypeVector, opTypeMatrix, opTypeImage, opTypeSampledImg,
			opTypeArray, opTypeRuntimeArr, opTypeStruct, opTypePointer:
			if len(ins) >= 1 {
				types[ins[0]] = spvType{op: op, words: ins[1:]}
			}
		case opConstant:
			if len(ins) >= 3 {
				consts[ins[1]] = ins[2]
			}
		case opVariable:
			if len(ins) >= 3 {
				vars[ins[1]] = varInfo{ptrType: ins[0], class: ins[2]}
			}
		case opDecorate:
			if len(ins) >= 2 {
				if decor[ins[0]] == nil {
					decor[ins[0]] = map[uint32]uint32{}
				}
				var lit uint32
				if len(ins) >= 3 {
					lit = ins[2]
				}
				decor[ins[0]][ins[1]] = lit
				if ins[1] == decSpecID {
					ref.SpecIDs = append(ref.SpecIDs, lit)
				}
			}
		case opMemberDecorate:
			if len(ins) >= 3 {
				if memberDecor[ins[0]] == nil {
					memberDecor[ins[0]] = map[[2]uint32]uint32{}
				}
				var lit uint32
				if len(ins) >= 4 {
					lit = ins[3]
				}
				memberDecor[ins[0]][[2]uint32{ins[1], ins[2]}] = lit
			}
		}
	}
	if !entry {
		return nil, errors.New("spirv: no GLCompute entry point named main")
	}
	if functions == 0 || functions != ends || last != opFunctionEnd {
		return nil, errors.New("spirv: module is truncated (functions not closed by OpFunctionEnd)")
	}
	var sizeOf func(id uint32, depth int) (int, error)
	sizeOf = func(id uint32, depth int) (int, error) {
		t, ok := types[id]
		if !ok || depth > 16 {
			return 0, fmt.Errorf("spirv: unknown type %%%d in a push-constant block", id)
		}
		switch t.op {
		case opTypeInt, opTypeFloat:
			return int(t.words[0]) / 8, nil
		case opTypeVector, opTypeMatrix:
			s, err := sizeOf(t.words[0], depth+1)
			return s * int(t.words[1]), err
		case opTypeArray:
			stride, ok := decor[id][decArrayStride]
			if !ok {
				s, err := sizeOf(t.words[0], depth+1)
				if err != nil {
					return 0, err
				}
				stride = uint32(s)
			}
			return int(stride) * int(consts[t.words[1]]), nil
		case opTypeStruct:
			end := 0
			for m, mt := range t.words {
				s, err := sizeOf(mt, depth+1)
				if err != nil {
					return 0, err
				}
				end = max(end, int(memberDecor[id][[2]uint32{uint32(m), decOffset}])+s)
			}
			return end, nil
		}
		return 0, fmt.Errorf("spirv: unsupported type (opcode %d) in a push-constant block", t.op)
	}
	ids := make([]uint32, 0, len(vars))
	for id := range vars {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	for _, id := range ids {
		v := vars[id]
		ptr, ok := types[v.ptrType]
		if !ok || ptr.op != opTypePointer || len(ptr.words) < 2 {
			continue
		}
		pointee := ptr.words[1]
		switch v.class {
		case scPushConstant:
			s, err := sizeOf(pointee, 0)
			if err != nil {
				return nil, err
			}
			ref.PushBytes = s
			continue
		case scUniformConstant, scUniform, scStorageBuffer:
		default:
			continue
		}
		d := decor[id]
		binding, hasBinding := d[decBinding]
		if !hasBinding {
			continue
		}
		if set := d[decDescriptorSet]; set != 0 {
			return nil, fmt.Errorf("spirv: binding %d is in descriptor set %d; kernels use set 0 only", binding, set)
		}
		info := BindingInfo{Binding: binding, Name: names[id]}
		switch v.class {
		case scStorageBuffer:
			info.Kind = StorageBuffer
			info.ReadOnly = readOnly(id, pointee, decor, memberDecor, types)
		case scUniform:
			if _, bb := decor[pointee][decBufferBlock]; bb {
				info.Kind = StorageBuffer
				info.ReadOnly = readOnly(id, pointee, decor, memberDecor, types)
			} else {
				info.Kind, info.ReadOnly = UniformBuffer, true
			}
		case scUniformConstant:
			img := types[pointee]
			if img.op == opTypeSampledImg {
				img = types[img.words[0]]
			}
			if img.op != opTypeImage || len(img.words) < 6 || img.words[1] != dimBuffer || img.words[5] != 1 {
				return nil, fmt.Errorf("spirv: binding %d (%s) is an image or sampler kind that kernels do not support; use buffers or samplerBuffer", binding, names[id])
			}
			info.Kind, info.ReadOnly = UniformTexelBuffer, true
		}
		ref.Bindings = append(ref.Bindings, info)
	}
	sort.Slice(ref.Bindings, func(a, b int) bool { return ref.Bindings[a].Binding < ref.Bindings[b].Binding })
	for i := 1; i < len(ref.Bindings); i++ {
		if ref.Bindings[i].Binding == ref.Bindings[i-1].Binding {
			return nil, errors.New("spirv: two variables share binding " + fmt.Sprint(ref.Bindings[i].Binding))
		}
	}
	sort.Slice(ref.SpecIDs, func(a, b int) bool { return ref.SpecIDs[a] < ref.SpecIDs[b] })
	return ref, nil
}

// readOnly reports whether a buffer variable is NonWritable, either itself or in
// every member of its block.
func readOnly(id, block uint32, decor map[uint32]map[uint32]uint32, memberDecor map[uint32]map[[2]uint32]uint32, types map[uint32]spvType) bool {
	if _, ok := decor[id][decNonWritable]; ok {
		return true
	}
	t := types[block]
	if t.op != opTypeStruct || len(t.words) == 0 {
		return false
	}
	for m := range t.words {
		if _, ok := memberDecor[block][[2]uint32{uint32(m), decNonWritable}]; !ok {
			return false
		}
	}
	return true
}

func spvString(ws []uint32) string {
	b := make([]byte, 0, 4*len(ws))
	for _, w := range ws {
		for k := 0; k < 4; k++ {
			c := byte(w >> (8 * k))
			if c == 0 {
				return string(b)
			}
			b = append(b, c)
		}
	}
	return string(b)
}
