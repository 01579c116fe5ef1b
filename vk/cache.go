package vk

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// pipelineCache is a VkPipelineCache persisted on disk, one file per device and
// driver version, so that pipelines compile once per machine.
type pipelineCache struct {
	dev  *Device
	h    vk.PipelineCache
	path string // "" when not persisted
}

// DefaultCacheDir is $VKTRAIN_CACHE, or vktrain under the user cache directory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("VKTRAIN_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory: %w", err)
	}
	return filepath.Join(d, "vktrain"), nil
}

func openPipelineCache(d *Device, dir string) (*pipelineCache, error) {
	c := &pipelineCache{dev: d}
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			d.log.Warn("pipeline cache not persisted", "err", err)
			dir = "-"
		}
	}
	var initial []byte
	if dir != "-" {
		c.path = filepath.Join(dir, "pipelines", fmt.Sprintf("%s-%08x.bin", hex.EncodeToString(d.Info.CacheUUID[:]), d.Info.DriverVersion))
		if b, err := os.ReadFile(c.path); err == nil {
			initial = b
		} else if !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("ignoring unreadable pipeline cache", "path", c.path, "err", err)
		}
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	info := vk.PipelineCacheCreateInfo{SType: vk.StructureTypePipelineCacheCreateInfo}
	if len(initial) > 0 {
		pin.Pin(&initial[0])
		info.InitialDataSize = uint(len(initial))
		info.PInitialData = unsafe.Pointer(&initial[0])
	}
	var h vk.PipelineCache
	r := vk.CreatePipelineCache(d.device, &info, nil, &h)
	info.Free()
	if err := check("vkCreatePipelineCache", r); err != nil {
		return nil, err
	}
	c.h = h
	return c, nil
}

func (c *pipelineCache) handle() vk.PipelineCache {
	if c == nil {
		return vk.NullPipelineCache
	}
	return c.h
}

// close writes the cache to disk (atomically) and destroys it.
func (c *pipelineCache) close() error {
	defer vk.DestroyPipelineCache(c.dev.device, c.h, nil)
	if c.path == "" {
		return nil
	}
	var n uint
	if err := check("vkGetPipelineCacheData", vk.GetPipelineCacheData(c.dev.device, c.h, &n, nil)); err != nil || n == 0 {
		return err
	}
	data := make([]byte, n)
	if err := check("vkGetPipelineCacheData", vk.GetPipelineCacheData(c.dev.device, c.h, &n, unsafe.Pointer(&data[0]))); err != nil {
		return err
	}
	if err := writeAtomic(c.path, data[:n]); err != nil {
		// A cache that cannot be saved costs compile time, nothing else.
		c.dev.log.Warn("pipeline cache not saved", "path", c.path, "err", err)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
