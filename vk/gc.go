package vk

import (
	"runtime/debug"
	"sync"
)

// vulkan-go converts a slice of structs (create infos, descriptor writes,
// barriers, name lists) into C memory that it frees from a finalizer set on a
// local variable of the conversion function. That variable is unreachable as
// soon as the conversion returns, so a garbage collection during the Vulkan call
// itself can free the C memory the call is reading (seen as crashes inside
// vkCreateComputePipelines under GOGC=1 or two test processes at once).
// withoutGC runs f with the collector off: debug.SetGCPercent(-1) also waits for
// a cycle in progress to finish, so no collection overlaps f. Calls nest and may
// come from several goroutines; the collector comes back when the last ends.
//
// This is the package's one piece of process-wide state, mirroring the runtime's
// own: the collector setting is process-wide.
var gcOff struct {
	mu    sync.Mutex
	depth int
	saved int
}

func withoutGC(f func()) {
	gcOff.mu.Lock()
	if gcOff.depth == 0 {
		gcOff.saved = debug.SetGCPercent(-1)
	}
	gcOff.depth++
	gcOff.mu.Unlock()
	defer func() {
		gcOff.mu.Lock()
		gcOff.depth--
		if gcOff.depth == 0 {
			debug.SetGCPercent(gcOff.saved)
		}
		gcOff.mu.Unlock()
	}()
	f()
}
