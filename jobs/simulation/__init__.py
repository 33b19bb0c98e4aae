"""The movielens-100k simulator behind `velox simulate`, and off-policy evaluation inside it.

The setting (documented because results depend on it):

* **Hidden world.** A random cohort of users (default 100 of ml-100k's 943) is held out.
  Biased ALS (`world_rank` 8, weighted-λ 0.1) fitted on ALL ratings gives r̂(u, i); a cohort
  user likes item i with probability Φ((r̂(u, i) - 4.5) / s), s the residual std: the chance
  that their rating would be a 5. Each like is drawn afresh every time the item is shown.
* **Learner.** Only what a snapshot would hold: item features fitted by `velox train`'s own
  recipe (`train_features.py`: baseline biases, an explicit ALS on their residuals and an
  implicit "exposure" ALS on which items each user rated, f(x; θ) = [v_i, s·y_i, mu + b_i, 1])
  at its default rank and hyper-parameters (`learner_rank` 16, d = 34), fitted on the other
  users' ratings; `learner="biased-als"` swaps in the hidden world's own model class
  ([v_i, 1, b_i], d = 18), the simulator's learner until 2026-12-07. The head prior for a new
  user (w0, λ, noise_std) is fitted on those users' like labels (`head_prior.py`) at those
  features. Cohort users are new users (cold start): their heads start at the population
  prior. By default the labels are the recorded ratings (`prior_labels="ratings"`: a 5 is a
  like), so nothing the learner holds depends on the cohort. `prior_labels="world"` draws them
  from the hidden model at the same (user, item) pairs instead: the prior is then fitted on the
  world the cohort lives in (on ml-100k, measured with a rank-8 learner, it matches the spread
  of the cohort's best linear weights, where the recorded labels give one 2 to 2.6 x too wide),
  at the price of depending, through the hidden model's item terms, on the cohort's ratings.
* **Loop.** Each step a uniformly random cohort user visits and the policy shows one item
  (`slate_size`) from the whole catalog (`candidates`: a random retrieval stage instead) through
  `velox.policies`, `UserPosterior.update` and `velox.scoring`, as the service does. By
  default an item may be shown to a user again (`repeat`; a stationary bandit per user, like
  a recommendation slot on every visit); `repeat=False` never re-shows an item.
* **Fits in numpy, not Spark.** A benchmark needs a fresh world per seed; a Spark session's
  start-up alone outlasts the whole numpy ALS (< 1 s on ml-100k; see factorize.py). The port of
  `velox train`'s recipe is checked against the Spark fit itself
  (tests/jobs/test_simulation_train_features.py).
"""

from jobs.simulation.environment import Environment, SimulationSetting, build_environment
from jobs.simulation.runner import PolicyRun, run_policy

__all__ = ["Environment", "PolicyRun", "SimulationSetting", "build_environment", "run_policy"]
