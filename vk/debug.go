package vk

// #include <stdint.h>
import "C"

import (
	"fmt"
	"runtime/cgo"
	"strings"
	"sync"
)

// Severity of a validation message.
type Severity int

// Severities reported by the debug messenger (warnings and errors are collected).
const (
	SeverityVerbose Severity = 0x1
	SeverityInfo    Severity = 0x10
	SeverityWarning Severity = 0x100
	SeverityError   Severity = 0x1000
)

func (s Severity) String() string {
	switch s {
	case SeverityVerbose:
		return "verbose"
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return fmt.Sprintf("severity(%#x)", int(s))
}

// Message is one message from the validation layer.
type Message struct {
	Severity Severity
	ID       string // e.g. "SYNC-HAZARD-READ-AFTER-WRITE"
	Text     string
}

func (m Message) String() string { return fmt.Sprintf("[%s] %s: %s", m.Severity, m.ID, m.Text) }

// messageLog collects validation messages for one Device. The C callback reaches it
// through a cgo.Handle passed as the messenger's user data.
type messageLog struct {
	mu       sync.Mutex
	messages []Message
	onMsg    func(Message)
	handle   cgo.Handle
}

func newMessageLog(onMsg func(Message)) *messageLog {
	l := &messageLog{onMsg: onMsg}
	l.handle = cgo.NewHandle(l)
	return l
}

func (l *messageLog) add(m Message) {
	l.mu.Lock()
	l.messages = append(l.messages, m)
	l.mu.Unlock()
	if l.onMsg != nil {
		l.onMsg(m)
	}
}

func (l *messageLog) drain() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.messages
	l.messages = nil
	return out
}

// vktDebugMessage is called by the C debug-utils callback. Strings are copied: they
// point into the layer's memory and are only valid during the call.
//
//export vktDebugMessage
func vktDebugMessage(user C.uintptr_t, severity, types C.int, id, msg *C.char) {
	l, ok := cgo.Handle(user).Value().(*messageLog)
	if !ok {
		return
	}
	l.add(Message{Severity: Severity(severity), ID: C.GoString(id), Text: strings.TrimSpace(C.GoString(msg))})
}
