// Package shaders holds vktrain's GLSL compute kernels and their SPIR-V, built by
// `make shaders` (glslc, then spirv-val) and embedded, so that building vktrain
// needs no shader compiler. kernels.txt lists every module and its variant defines.
package shaders

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed spv/*.spv
var spv embed.FS

// SPIRV returns the compiled module called name (as listed in kernels.txt).
func SPIRV(name string) ([]byte, error) {
	b, err := spv.ReadFile("spv/" + name + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shaders: no compiled kernel %q (is it in shaders/kernels.txt, and did `make shaders` run?): %w", name, err)
	}
	return b, nil
}

// Names lists the compiled modules, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(spv, "spv")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".spv"))
	}
	sort.Strings(names)
	return names
}
