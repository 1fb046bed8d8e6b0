"""Analysis of a search: seed-robustness statistics, tables, figures and the dashboard launcher.

Modules: ``stats`` (summaries over seeds, Kendall τ, paired tests, robust best), ``tables`` (CSV /
Markdown / LaTeX), ``figures`` (seaborn figures from tidy frames), ``dashboard`` (optuna-dashboard).
They work on plain data and DataFrames; reading a study into frames is the report layer's job.
"""
