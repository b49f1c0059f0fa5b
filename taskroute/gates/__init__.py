"""Quality gates: each decides whether an answer is good enough, or sends the request on to the
next model in the chain. `base.Gate` is the Protocol; `registry` maps policy names to gates."""
