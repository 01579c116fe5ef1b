package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"vktrain/vk"
)

func runDevices(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("devices", e)
	var df deviceFlags
	df.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	devs, chosen, reason, err := vk.ListDevices(df.device)
	if err != nil && devs == nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for i, d := range devs {
		mark := " "
		if i == chosen {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %d: %s\n", mark, d.Index, d.Name)
		row := func(k, format string, a ...any) { fmt.Fprintf(w, "    %s\t"+format+"\n", append([]any{k}, a...)...) }
		row("type", "%s", d.Type)
		row("driver", "%s", strings.TrimSpace(d.DriverName+" "+d.DriverInfo))
		row("Vulkan", "%s (driver version %#x)", d.APIVersion, d.DriverVersion)
		for j, h := range d.Heaps {
			kind := "host"
			if h.DeviceLocal {
				kind = "device-local"
			}
			row(fmt.Sprintf("heap %d", j), "%s, %s", bytesText(h.Size), kind)
		}
		row("memory", "%s", memoryText(d))
		row("subgroup size", "%d (shuffles in compute shaders: %v)", d.SubgroupSize, d.SubgroupShuffle)
		row("workgroup", "max size %v, %d invocations, count %v", d.MaxWorkgroupSize, d.MaxWorkgroupInvocations, d.MaxWorkgroupCount)
		row("shared memory", "%s per workgroup", bytesText(uint64(d.SharedMemoryBytes)))
		row("storage buffer", "max range %s", bytesText(uint64(d.MaxStorageBufferRange)))
		row("texel buffer", "max %d texels (%s as RGBA32F)", d.MaxTexelBufferElements, bytesText(16*uint64(d.MaxTexelBufferElements)))
		row("push constants", "%d bytes", d.MaxPushConstantsBytes)
		row("timestamps", "%v (period %.3g ns)", d.TimestampsOnCompute, d.TimestampPeriodNs)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nchosen: %d (%s): %s\n", chosen, devs[chosen].Name, reason)
	return nil
}

func memoryText(d vk.DeviceInfo) string {
	if d.UnifiedMemory() {
		return "unified: buffers mapped directly, no staging copies"
	}
	return "separate: host copies go through staging buffers"
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
