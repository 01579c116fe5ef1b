package weights

import (
	"bytes"
	"fmt"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// ForbiddenGlobalError reports a pickle that asks for a global outside the short
// list a state dict needs (for example posix.system). Nothing was executed.
type ForbiddenGlobalError struct {
	Module, Name string
}

// Error names the refused global.
func (e *ForbiddenGlobalError) Error() string {
	return fmt.Sprintf("pickle asks for forbidden global %s.%s", e.Module, e.Name)
}

// storageRef is a storage named by a persistent id. Its data is read once the
// pickle is done (in the legacy format it follows the pickle in the file).
type storageRef struct {
	key     string
	dtype   DType
	numel   int
	data    []float32
	claimed bool // data is already handed out as a tensor's Data without a copy
}

// tensorRef is what the _rebuild_tensor functions build: a view into a storage.
type tensorRef struct {
	storage *storageRef
	offset  int
	shape   []int
	stride  []int
}

// storageClass stands for torch.FloatStorage and its siblings.
type storageClass struct{ dtype DType }

// callable adapts a Go function to gopickle's REDUCE.
type callable func(args []any) (any, error)

// Call implements types.Callable.
func (c callable) Call(args ...any) (any, error) { return c(args) }

// storageDType maps torch's typed storage names to dtypes.
func storageDType(name string) (DType, bool) {
	switch name {
	case "FloatStorage":
		return F32, true
	case "DoubleStorage":
		return F64, true
	case "HalfStorage":
		return F16, true
	case "BFloat16Storage":
		return BF16, true
	case "LongStorage":
		return I64, true
	case "IntStorage":
		return I32, true
	case "ShortStorage":
		return I16, true
	case "CharStorage":
		return I8, true
	case "ByteStorage":
		return U8, true
	case "BoolStorage":
		return Bool, true
	}
	return "", false
}

// unpickler unpickles the pickles of one .pth file, collecting the storages that
// their persistent ids name.
type unpickler struct {
	storages map[string]*storageRef
}

func newUnpickler() *unpickler {
	return &unpickler{storages: make(map[string]*storageRef)}
}

// load unpickles one pickle. Persistent ids are allowed only when storages is true.
// A panic inside gopickle (it trusts its input in places) becomes an error.
func (u *unpickler) load(data []byte, storages bool) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	up := pickle.NewUnpickler(bytes.NewReader(data))
	up.FindClass = u.findClass
	if storages {
		up.PersistentLoad = u.persistentLoad
	}
	v, err = up.Load()
	if err != nil {
		return nil, err
	}
	return v, nil
}

// findClass resolves the globals a state dict needs and refuses every other one.
// (gopickle itself answers collections.OrderedDict, __builtin__.object and
// copy_reg._reconstructor with inert Go types before asking.)
func (u *unpickler) findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return callable(rebuildTensorV2), nil
	case "torch._utils._rebuild_tensor":
		return callable(rebuildTensor), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return callable(rebuildParameter), nil
	case "torch.Size":
		return callable(torchSize), nil
	}
	if module == "torch" {
		if dt, ok := storageDType(name); ok {
			return &storageClass{dtype: dt}, nil
		}
	}
	return nil, &ForbiddenGlobalError{Module: module, Name: name}
}

// persistentLoad resolves ('storage', class, key, location, numel[, view_metadata]),
// the persistent id torch.save writes for a storage (five fields in the zip format,
// six in the legacy one).
func (u *unpickler) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || (t.Len() != 5 && t.Len() != 6) {
		return nil, fmt.Errorf("unsupported persistent id %s", describe(pid))
	}
	kind, _ := t.Get(0).(string)
	class, classOK := t.Get(1).(*storageClass)
	key, keyOK := t.Get(2).(string)
	_, locOK := t.Get(3).(string)
	numel, numelOK := t.Get(4).(int)
	if kind != "storage" || !classOK || !keyOK || !locOK || !numelOK || numel < 0 {
		return nil, fmt.Errorf("malformed storage persistent id")
	}
	if t.Len() == 6 && t.Get(5) != nil {
		return nil, fmt.Errorf("storage %q: storage views (files older than torch 0.4) are not supported", key)
	}
	if s, ok := u.storages[key]; ok {
		if s.dtype != class.dtype || s.numel != numel {
			return nil, fmt.Errorf("storage %q is named as %d %s and as %d %s elements",
				key, s.numel, s.dtype, numel, class.dtype)
		}
		return s, nil
	}
	s := &storageRef{key: key, dtype: class.dtype, numel: numel}
	u.storages[key] = s
	return s, nil
}

// rebuildTensorV2 mirrors torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensorV2(args []any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want 6 or 7", len(args))
	}
	return rebuildTensor(args[:4])
}

// rebuildTensor mirrors torch._utils._rebuild_tensor(storage, storage_offset, size, stride).
func rebuildTensor(args []any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_tensor: %d arguments, want 4", len(args))
	}
	s, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: storage is %s", describe(args[0]))
	}
	offset, ok := args[1].(int)
	if !ok || offset < 0 {
		return nil, fmt.Errorf("_rebuild_tensor: bad storage offset %s", describe(args[1]))
	}
	shape, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: stride: %w", err)
	}
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor: size %v and stride %v differ in length", shape, stride)
	}
	return &tensorRef{storage: s, offset: offset, shape: shape, stride: stride}, nil
}

// rebuildParameter mirrors torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks) and _rebuild_parameter_with_state(..., state): a Parameter is its data.
func rebuildParameter(args []any) (any, error) {
	if len(args) != 3 && len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_parameter: %d arguments, want 3 or 4", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is %s", describe(args[0]))
	}
	return t, nil
}

// torchSize mirrors torch.Size(tuple).
func torchSize(args []any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("torch.Size: %d arguments, want 1", len(args))
	}
	if _, err := intTuple(args[0]); err != nil {
		return nil, fmt.Errorf("torch.Size: %w", err)
	}
	return args[0], nil
}

// intTuple converts a pickled tuple (or list) of non-negative ints.
func intTuple(v any) ([]int, error) {
	var items []any
	switch t := v.(type) {
	case *types.Tuple:
		items = *t
	case *types.List:
		items = *t
	default:
		return nil, fmt.Errorf("want a tuple of ints, got %s", describe(v))
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := it.(int)
		if !ok || n < 0 {
			return nil, fmt.Errorf("want a tuple of non-negative ints, got %s", describe(it))
		}
		out[i] = n
	}
	return out, nil
}

// describe names the type of a pickled value for error messages, without
// printing the value (which may be large or cyclic).
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case string:
		return "a str"
	case int:
		return "an int"
	case *tensorRef:
		return "a tensor"
	case *storageRef:
		return "a storage"
	case *types.Tuple:
		return "a tuple"
	case *types.List:
		return "a list"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	}
	return fmt.Sprintf("a %T", v)
}

// entry is one key/value pair of a pickled dict.
type entry struct {
	key   any
	value any
}

// dictEntries returns the pairs of a pickled dict or OrderedDict in order.
func dictEntries(v any) ([]entry, bool) {
	var out []entry
	switch d := v.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			if oe, ok := e.Value.(*types.OrderedDictEntry); ok {
				out = append(out, entry{oe.Key, oe.Value})
			}
		}
	case *types.Dict:
		for _, e := range *d {
			out = append(out, entry{e.Key, e.Value})
		}
	default:
		return nil, false
	}
	return out, true
}

// namedTensor is one state-dict entry before its data is materialized.
type namedTensor struct {
	name string
	ref  *tensorRef
}

// stateDictEntries finds the tensors in an unpickled object: a dict of name ->
// tensor, or a checkpoint dict holding one under "state_dict" or "model".
func stateDictEntries(v any) ([]namedTensor, error) {
	entries, ok := dictEntries(v)
	if !ok {
		return nil, fmt.Errorf("file holds %s, not a state dict", describe(v))
	}
	tensors, err := tensorEntries(entries)
	if err == nil {
		return tensors, nil
	}
	for _, key := range []string{"state_dict", "model"} {
		if inner, ok := dictEntries(lookup(entries, key)); ok {
			if tensors, innerErr := tensorEntries(inner); innerErr == nil {
				return tensors, nil
			}
		}
	}
	return nil, err
}

// lookup returns the value of the first pair whose key is key, or nil.
func lookup(entries []entry, key string) any {
	for _, e := range entries {
		if e.key == key {
			return e.value
		}
	}
	return nil
}

// tensorEntries checks that every pair maps a distinct string to a tensor.
func tensorEntries(entries []entry) ([]namedTensor, error) {
	out := make([]namedTensor, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok {
			return nil, fmt.Errorf("state dict key is %s, not a str", describe(e.key))
		}
		ref, ok := e.value.(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("state dict entry %q is %s, not a tensor", name, describe(e.value))
		}
		if seen[name] {
			return nil, fmt.Errorf("state dict names %q twice", name)
		}
		seen[name] = true
		out = append(out, namedTensor{name, ref})
	}
	return out, nil
}
