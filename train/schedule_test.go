package train

import (
	"math"
	"testing"
)

// TestLRAt checks each schedule against its closed form at the edges: warm-up
// steps, decay boundaries, the cosine's half-way point and last step.
func TestLRAt(t *testing.T) {
	base := Config{LR: 0.1, Epochs: 6}
	const spe = 10 // steps per epoch
	for _, c := range []struct {
		name string
		cfg  func(Config) Config
		step int
		want float64
	}{
		{"constant", func(c Config) Config { return c }, 37, 0.1},
		{"constant named", func(c Config) Config { c.LRSchedule = ScheduleConstant; return c }, 59, 0.1},
		{"warm-up first step", func(c Config) Config { c.WarmupEpochs = 0.5; return c }, 0, 0.1 / 5},
		{"warm-up last step", func(c Config) Config { c.WarmupEpochs = 0.5; return c }, 4, 0.1},
		{"after warm-up", func(c Config) Config { c.WarmupEpochs = 0.5; return c }, 5, 0.1},
		{"step before decay", func(c Config) Config { c.LRSchedule, c.LRStepEpochs = ScheduleStep, 2; return c }, 19, 0.1},
		{"step first decay", func(c Config) Config { c.LRSchedule, c.LRStepEpochs = ScheduleStep, 2; return c }, 20, 0.01},
		{"step second decay", func(c Config) Config { c.LRSchedule, c.LRStepEpochs = ScheduleStep, 2; return c }, 45, 0.001},
		{"step gamma", func(c Config) Config { c.LRSchedule, c.LRStepEpochs, c.LRGamma = ScheduleStep, 3, 0.5; return c }, 30, 0.05},
		{"step default period", func(c Config) Config { c.LRSchedule = ScheduleStep; return c }, 20, 0.01}, // 6/3 = 2 epochs
		{"cosine start", func(c Config) Config { c.LRSchedule = ScheduleCosine; return c }, 0, 0.1},
		{"cosine half", func(c Config) Config { c.LRSchedule = ScheduleCosine; return c }, 30, 0.05},
		{"cosine last", func(c Config) Config { c.LRSchedule = ScheduleCosine; return c }, 59, 0.1 * (1 + math.Cos(math.Pi*59/60)) / 2},
		{"cosine after warm-up", func(c Config) Config { c.LRSchedule, c.WarmupEpochs = ScheduleCosine, 1; return c }, 10, 0.1},
		{"cosine half after warm-up", func(c Config) Config { c.LRSchedule, c.WarmupEpochs = ScheduleCosine, 1; return c }, 35, 0.05},
	} {
		cfg := c.cfg(base)
		if err := cfg.Validate(); err != nil && cfg.Pretrained != "" {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := LRAt(cfg, c.step, spe); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%s: step %d: lr %.17g, want %.17g", c.name, c.step, got, c.want)
		}
	}
}

func TestScheduleConfigErrors(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.LRSchedule = "linear" },
		func(c *Config) { c.WarmupEpochs = -1 },
		func(c *Config) { c.WarmupEpochs = float64(c.Epochs) },
		func(c *Config) { c.LRStepEpochs = -2 },
		func(c *Config) { c.LRGamma = 2 },
	} {
		c := Defaults()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
