package console

import (
	"math"
	"time"
)

// year is the length of the year failure rates are quoted per.
const year = 365 * 24 * time.Hour

// DefaultDriveAFR is the annual failure rate assumed for one node's drive
// when none is configured: a little above what large fleets publish for
// data-centre drives (Backblaze's fleet runs at 1.4-2%), so the estimate
// errs on the low side.
const DefaultDriveAFR = 0.02

// DefaultRepairWindow is how long a lost shard is assumed to stay lost
// when the scrubber has not measured it: a daily scrub.
const DefaultRepairWindow = 24 * time.Hour

// LevelCount is the number of objects with a given number of healthy
// shards. Healthy below the data shards means the object cannot be read.
type LevelCount struct {
	Healthy int
	Objects int64
}

// Durability is an estimate of the annual durability of the objects of
// LevelCounts (see docs/durability.md for the model).
type Durability struct {
	// LossPerYear is the expected fraction of the objects lost in a
	// year: the mean, over the objects, of each one's probability of loss.
	LossPerYear float64
	// Nines is -log10(LossPerYear): 11 means 99.999999999%. +Inf when
	// nothing can be lost (no parity-less objects, AFR 0); 0 when objects
	// are already unreadable.
	Nines float64
	// Unreadable counts the objects already below d healthy shards.
	Unreadable int64
	Objects    int64
}

// ObjectLoss is the probability that one object with healthy shards on
// distinct nodes, of which d are needed, is lost within a year, after
// Backblaze's calculation: drives fail independently, at afr a year each;
// the number that fail within one repair window is Poisson with mean
// healthy × afr × window/year; the object is lost in a window if more
// than healthy-d of its drives fail in it (they all fail before any is
// rebuilt); and the windows of a year are independent trials. An object
// below d is lost already (1).
func ObjectLoss(healthy, d int, afr float64, window time.Duration) float64 {
	if healthy < d || d <= 0 {
		return 1
	}
	if afr <= 0 || window <= 0 {
		return 0
	}
	frac := float64(window) / float64(year)
	lambda := float64(healthy) * afr * frac
	perWindow := poissonTail(lambda, healthy-d+1)
	if perWindow >= 1 {
		return 1
	}
	// 1-(1-p)^m without losing p to rounding when it is tiny.
	return -math.Expm1(math.Log1p(-perWindow) / frac)
}

// poissonTail is P(X >= k) for X Poisson with mean lambda, summed from k
// upwards: 1 minus the terms below k would cancel to nothing for the
// small probabilities that matter here.
func poissonTail(lambda float64, k int) float64 {
	if k <= 0 {
		return 1
	}
	if lambda <= 0 {
		return 0
	}
	// term = e^-λ λ^i / i!, in logs so that large k cannot overflow.
	lg, _ := math.Lgamma(float64(k) + 1)
	logTerm := -lambda + float64(k)*math.Log(lambda) - lg
	term := math.Exp(logTerm)
	sum := 0.0
	for i := k; i < k+200 && term > sum*1e-17; i++ {
		sum += term
		term *= lambda / float64(i+1)
	}
	if sum > 1 {
		return 1
	}
	return sum
}

// Estimate combines the objects at each level into one Durability, for d
// data shards, a drive failure rate afr a year and a repair window.
func Estimate(levels []LevelCount, d int, afr float64, window time.Duration) Durability {
	var out Durability
	var lost float64
	for _, l := range levels {
		out.Objects += l.Objects
		if l.Healthy < d {
			out.Unreadable += l.Objects
		}
		if l.Objects > 0 {
			lost += float64(l.Objects) * ObjectLoss(l.Healthy, d, afr, window)
		}
	}
	if out.Objects == 0 {
		out.Nines = math.NaN()
		return out
	}
	out.LossPerYear = lost / float64(out.Objects)
	out.Nines = -math.Log10(out.LossPerYear)
	if out.Unreadable > 0 {
		out.Nines = 0
	}
	return out
}
