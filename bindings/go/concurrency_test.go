package turnout

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Two configs that answer differently for the same units: every answer seen
// during the updates must come from one or the other, never a mix.
func twoConfigs(a, b int) ([]byte, []byte) {
	cfg := func(version, base int) []byte {
		return []byte(fmt.Sprintf(`{"schema": 1, "version": %d, "rollouts": [
			{"variable": "delay", "default": %d,
			 "rollouts": [{"value": %d, "constraints": [{"target": "city", "op": "=", "value": "6"}]}]},
			{"variable": "flag", "default": %t}]}`, version, base, base+1, base%2 == 0))
	}
	return cfg(1, a), cfg(2, b)
}

func TestConcurrentEvaluationDuringUpdates(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	c := newClient(t, cfgA)
	delay, _ := c.Variable("delay")
	defer delay.Close()
	flag, _ := c.Variable("flag")
	defer flag.Close()

	const workers = 8
	const updates = 1000
	var stop atomic.Bool
	var decisions atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			city := int64(5 + w%2) // half the workers in city 6
			f := NewFacets().City(city).Passenger(int64(w))
			unit, err := c.Context(f)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer unit.Close()
			okA, okB := int64(30), int64(45)
			if city == 6 {
				okA, okB = 31, 46
			}
			for i := 0; !stop.Load() || i < 100; i++ {
				var got int64
				if i%2 == 0 {
					got = unit.Int64(delay, -1)
				} else {
					got = c.GetVariable(bg, "delay", f).Int64(-1)
				}
				unit.Bool(flag, false) // flips with the config: both answers are valid
				if got != okA && got != okB {
					errs <- fmt.Sprintf("worker %d: delay %d is from neither config", w, got)
					return
				}
				decisions.Add(1)
				if i%64 == 0 { // keep the event queue drained
					if batch, _ := c.TakeBatch(10000); batch != nil {
						c.Ack(batch.Seq)
					}
				}
			}
		}(w)
	}
	for i := 0; i < updates; i++ {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		if _, err := c.UpdateConfig(cfg); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if v, _ := c.ConfigVersion(); v != 1 {
		t.Fatalf("last update installed version %d", v)
	}
	t.Logf("%d decisions during %d updates", decisions.Load(), updates)
}
