"""The repository layer: a promptyard repository read at any point, and every git call.

- `trees`: where bytes come from (working tree, git commit, memory);
- `git`: every git command promptyard runs (resolve, merge base, changes, commits, remotes);
- `snapshot`: the repository's files at one point, parsed and validated on demand;
- `kinds`: environments, clusters and experiments, listed and found by name through one table;
- `datasets`: golden datasets and their readers (JSON lines, YAML, CSV);
- `changes`: what a set of changed files touches (prompts, datasets);
- `workspace`: the repository on disk, giving snapshots of the working tree or any ref.
"""
