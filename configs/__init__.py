"""The kit's yaml configs. A package only so that they install with the kit (as `lalm.configs`);
`lalm.paths.kit_config(name)` finds one in a checkout and in an installed kit alike."""
