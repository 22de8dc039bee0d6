"""``forgeml tune``: Optuna search over a model family's options (hyper-parameters and, for the
networks, the architecture), one study shared by worker processes or hosts, the best trial
refitted as a normal run and bundle.

Optuna is imported only inside functions: ``import forgeml`` and ``forgeml --help`` never pay for it."""
