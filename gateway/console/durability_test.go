package console

import (
	"math"
	"testing"
	"time"
)

// TestDurabilityByHand checks the estimate against a calculation done by
// hand, 4+2, a drive AFR of 2% and a repair window of a tenth of a year
// (36.5 days, so that the numbers stay round):
//
// Six healthy shards: a loss needs 3 of the 6 drives to fail in a window.
//
//	λ = 6 × 0.02 × 0.1                        = 0.012
//	P(≥3) = e^-λ (λ³/3! + λ⁴/4! + λ⁵/5! + …)
//	      = 0.9880717 × (2.88e-7 + 8.64e-10 + 2.07e-12)
//	      = 2.854204e-7                         per window
//	per year, 10 windows: 1 - (1 - 2.854204e-7)^10 = 2.854200e-6
//	nines = -log10(2.854200e-6)                 = 5.5445
//
// Five healthy shards: 2 of 5 must fail.
//
//	λ = 5 × 0.02 × 0.1                        = 0.01
//	P(≥2) = 0.9900498 × (5e-5 + 1.6667e-7 + 4.17e-10) = 4.966791e-5
//	per year: 1 - (1 - 4.966791e-5)^10         = 4.965681e-4
//
// 900 objects at six and 100 at five lose on average
//
//	(900 × 2.854200e-6 + 100 × 4.965681e-4) / 1000 = 5.222559e-5 a year,
//	nines = -log10(5.222559e-5)                     = 4.2821
func TestDurabilityByHand(t *testing.T) {
	const afr = 0.02
	window := year / 10
	cases := []struct {
		name   string
		levels []LevelCount
		loss   float64
		nines  float64
	}{
		{"all healthy", []LevelCount{{6, 1000}, {5, 0}, {4, 0}}, 2.854200e-6, 5.5445},
		{"some degraded", []LevelCount{{6, 900}, {5, 100}, {4, 0}}, 5.222559e-5, 4.2821},
		{"one unreadable", []LevelCount{{6, 999}, {3, 1}}, (999*2.854200e-6 + 1) / 1000, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Estimate(c.levels, 4, afr, window)
			if rel := math.Abs(got.LossPerYear-c.loss) / c.loss; rel > 1e-5 {
				t.Errorf("loss per year %.7g, want %.7g", got.LossPerYear, c.loss)
			}
			if math.Abs(got.Nines-c.nines) > 1e-4 {
				t.Errorf("nines %.5f, want %.4f", got.Nines, c.nines)
			}
		})
	}
}

func TestObjectLossEdges(t *testing.T) {
	cases := []struct {
		name       string
		healthy, d int
		afr        float64
		window     time.Duration
		want       float64
		tiny       bool
	}{
		{name: "below d is lost", healthy: 3, d: 4, afr: 0.02, window: time.Hour, want: 1},
		{name: "no failures, no loss", healthy: 6, d: 4, afr: 0, window: time.Hour, want: 0},
		{name: "no parity: any failure loses it", healthy: 4, d: 4, afr: 0.02, window: time.Hour,
			// λ = 4×0.02/8760 per hour window; P(≥1) per window summed
			// over the year ≈ 1 - e^-0.08.
			want: 1 - math.Exp(-0.08)},
		{name: "tiny probabilities survive rounding", healthy: 16, d: 4, afr: 0.01, window: time.Hour, tiny: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ObjectLoss(c.healthy, c.d, c.afr, c.window)
			if c.tiny {
				if got <= 0 || got > 1e-40 {
					t.Errorf("ObjectLoss = %g, want a tiny positive number", got)
				}
				return
			}
			if math.Abs(got-c.want) > 1e-6 {
				t.Errorf("ObjectLoss = %.8g, want %.8g", got, c.want)
			}
		})
	}
}
