package vk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// KernelSpec describes a compute kernel to build.
type KernelSpec struct {
	Name  string // labels the pipeline in validation messages, errors and timings
	SPIRV []byte // the module; its entry point is "main"
	// Spec sets specialization constants by constant_id (e.g. tile sizes, local
	// size through local_size_x_id). IDs the module does not declare are an error.
	Spec map[uint32]uint32
}

// Kernel is a compute pipeline with its descriptor layout and push-constant size,
// both read from the SPIR-V itself.
type Kernel struct {
	dev      *Device
	name     string
	refl     *Reflection
	module   vk.ShaderModule
	dsl      vk.DescriptorSetLayout
	layout   vk.PipelineLayout
	pipeline vk.Pipeline
}

// Name is the kernel's label.
func (k *Kernel) Name() string { return k.name }

// Reflection is what the kernel's SPIR-V declares.
func (k *Kernel) Reflection() *Reflection { return k.refl }

// NewKernel builds a compute pipeline from SPIR-V through the device's pipeline cache.
func (d *Device) NewKernel(spec KernelSpec) (*Kernel, error) {
	var r *Kernel
	var err error
	withoutGC(func() { r, err = d.newKernel(spec) })
	return r, err
}

func (d *Device) newKernel(spec KernelSpec) (*Kernel, error) {
	if d.closed {
		return nil, errors.New("vk: device is closed")
	}
	refl, err := Reflect(spec.SPIRV)
	if err != nil {
		return nil, fmt.Errorf("kernel %q: %w", spec.Name, err)
	}
	if refl.PushBytes > int(d.Info.MaxPushConstantsBytes) {
		return nil, fmt.Errorf("kernel %q: %d bytes of push constants exceed the device's %d", spec.Name, refl.PushBytes, d.Info.MaxPushConstantsBytes)
	}
	for id := range spec.Spec {
		i := sort.Search(len(refl.SpecIDs), func(i int) bool { return refl.SpecIDs[i] >= id })
		if i == len(refl.SpecIDs) || refl.SpecIDs[i] != id {
			return nil, fmt.Errorf("kernel %q: specialization constant %d is not declared by the shader (it declares %v)", spec.Name, id, refl.SpecIDs)
		}
	}
	k := &Kernel{dev: d, name: spec.Name, refl: refl}
	d.kernels[k] = struct{}{}
	if err := k.build(spec); err != nil {
		k.Close()
		return nil, fmt.Errorf("kernel %q: %w", spec.Name, err)
	}
	return k, nil
}

func (k *Kernel) build(spec KernelSpec) error {
	d := k.dev
	var pin runtime.Pinner
	defer pin.Unpin()

	code := make([]uint32, len(spec.SPIRV)/4)
	for i := range code {
		code[i] = binary.LittleEndian.Uint32(spec.SPIRV[4*i:])
	}
	pin.Pin(&code[0])
	minfo := vk.ShaderModuleCreateInfo{
		SType:    vk.StructureTypeShaderModuleCreateInfo,
		CodeSize: uint(len(spec.SPIRV)),
		PCode:    code,
	}
	var module vk.ShaderModule
	r := vk.CreateShaderModule(d.device, &minfo, nil, &module)
	minfo.Free()
	if err := check("vkCreateShaderModule", r); err != nil {
		return err
	}
	k.module = module

	bindings := make([]vk.DescriptorSetLayoutBinding, len(k.refl.Bindings))
	for i, b := range k.refl.Bindings {
		bindings[i] = vk.DescriptorSetLayoutBinding{
			Binding:         b.Binding,
			DescriptorType:  descriptorType(b.Kind),
			DescriptorCount: 1,
			StageFlags:      vk.ShaderStageFlags(vk.ShaderStageComputeBit),
		}
	}
	if len(bindings) > 0 {
		pin.Pin(&bindings[0])
	}
	linfo := vk.DescriptorSetLayoutCreateInfo{
		SType:        vk.StructureTypeDescriptorSetLayoutCreateInfo,
		BindingCount: uint32(len(bindings)),
		PBindings:    bindings,
	}
	var dsl vk.DescriptorSetLayout
	r = vk.CreateDescriptorSetLayout(d.device, &linfo, nil, &dsl)
	linfo.Free()
	for i := range bindings {
		bindings[i].Free()
	}
	if err := check("vkCreateDescriptorSetLayout", r); err != nil {
		return err
	}
	k.dsl = dsl

	layouts := []vk.DescriptorSetLayout{dsl}
	pin.Pin(&layouts[0])
	var ranges []vk.PushConstantRange
	if k.refl.PushBytes > 0 {
		ranges = []vk.PushConstantRange{{
			StageFlags: vk.ShaderStageFlags(vk.ShaderStageComputeBit),
			Size:       uint32(k.refl.PushBytes),
		}}
		pin.Pin(&ranges[0])
	}
	plinfo := vk.PipelineLayoutCreateInfo{
		SType:                  vk.StructureTypePipelineLayoutCreateInfo,
		SetLayoutCount:         1,
		PSetLayouts:            layouts,
		PushConstantRangeCount: uint32(len(ranges)),
		PPushConstantRanges:    ranges,
	}
	var layout vk.PipelineLayout
	r = vk.CreatePipelineLayout(d.device, &plinfo, nil, &layout)
	plinfo.Free()
	for i := range ranges {
		ranges[i].Free()
	}
	if err := check("vkCreatePipelineLayout", r); err != nil {
		return err
	}
	k.layout = layout

	var specInfo []vk.SpecializationInfo
	if len(spec.Spec) > 0 {
		ids := make([]uint32, 0, len(spec.Spec))
		for id := range spec.Spec {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		entries := make([]vk.SpecializationMapEntry, len(ids))
		data := make([]uint32, len(ids))
		for i, id := range ids {
			entries[i] = vk.SpecializationMapEntry{ConstantID: id, Offset: uint32(4 * i), Size: 4}
			data[i] = spec.Spec[id]
		}
		pin.Pin(&entries[0])
		pin.Pin(&data[0])
		specInfo = []vk.SpecializationInfo{{
			MapEntryCount: uint32(len(entries)),
			PMapEntries:   entries,
			DataSize:      uint(4 * len(data)),
			PData:         unsafe.Pointer(&data[0]),
		}}
		pin.Pin(&specInfo[0])
		defer func() {
			specInfo[0].Free()
			for i := range entries {
				entries[i].Free()
			}
		}()
	}
	cinfo := []vk.ComputePipelineCreateInfo{{
		SType: vk.StructureTypeComputePipelineCreateInfo,
		Stage: vk.PipelineShaderStageCreateInfo{
			SType:               vk.StructureTypePipelineShaderStageCreateInfo,
			Stage:               vk.ShaderStageComputeBit,
			Module:              module,
			PName:               "main\x00",
			PSpecializationInfo: specInfo,
		},
		Layout: layout,
	}}
	pin.Pin(&cinfo[0])
	pipelines := make([]vk.Pipeline, 1)
	r = vk.CreateComputePipelines(d.device, d.cache.handle(), 1, cinfo, nil, pipelines)
	cinfo[0].Stage.Free()
	cinfo[0].Free()
	if err := check("vkCreateComputePipelines", r); err != nil {
		return err
	}
	k.pipeline = pipelines[0]
	d.setName(vk.ObjectTypePipeline, handleBits(k.pipeline), k.name)
	d.setName(vk.ObjectTypeShaderModule, handleBits(k.module), k.name)
	return nil
}

func descriptorType(k BindingKind) vk.DescriptorType {
	switch k {
	case UniformTexelBuffer:
		return vk.DescriptorTypeUniformTexelBuffer
	case UniformBuffer:
		return vk.DescriptorTypeUniformBuffer
	}
	return vk.DescriptorTypeStorageBuffer
}

// Close destroys the pipeline and its layouts. Streams that recorded the kernel
// must not be submitted again.
func (k *Kernel) Close() {
	withoutGC(func() { k.close() })
}

func (k *Kernel) close() {
	if k == nil || k.dev == nil || k.dev.device == nil {
		return
	}
	dev := k.dev.device
	delete(k.dev.kernels, k)
	if k.pipeline != vk.NullPipeline {
		vk.DestroyPipeline(dev, k.pipeline, nil)
	}
	if k.layout != vk.NullPipelineLayout {
		vk.DestroyPipelineLayout(dev, k.layout, nil)
	}
	if k.dsl != vk.NullDescriptorSetLayout {
		vk.DestroyDescriptorSetLayout(dev, k.dsl, nil)
	}
	if k.module != vk.NullShaderModule {
		vk.DestroyShaderModule(dev, k.module, nil)
	}
	*k = Kernel{name: k.name}
}
