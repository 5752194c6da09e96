"""The app's world-info settings start where a new SillyTavern install does
(`default/content/settings.json`: depth 2, budget 25%, no cap, recursion and whole words on,
names included, character lore first) and reach the prompt builder."""

from app.core.appdata.settings import Settings
from app.core.chat.job import prompt_settings, world_info_settings
from app.core.prompt.worldinfo import Strategy, WorldInfoSettings


def test_defaults_are_sillytaverns():
    assert world_info_settings(Settings()) == WorldInfoSettings()
    assert prompt_settings(Settings()).world_info == WorldInfoSettings()


def test_every_choice_reaches_the_builder():
    s = Settings(
        lore_scan_depth=5,
        lore_budget_percent=10,
        lore_budget_tokens=300,
        lore_recursive=False,
        lore_whole_words=False,
        lore_case_sensitive=True,
        lore_include_names=False,
        lore_min_activations=2,
        lore_strategy="evenly",
        lore_min_activations_depth_max=9,
        lore_max_recursion_steps=3,
        lore_group_scoring=True,
    )
    assert world_info_settings(s) == WorldInfoSettings(
        depth=5,
        budget_percent=10,
        budget_cap=300,
        recursive=False,
        whole_words=False,
        case_sensitive=True,
        include_names=False,
        min_activations=2,
        min_activations_depth_max=9,
        max_recursion_steps=3,
        use_group_scoring=True,
        strategy=Strategy.EVENLY,
    )
    assert (
        world_info_settings(Settings(lore_strategy="global_first")).strategy
        == Strategy.GLOBAL_FIRST
    )
    assert (
        world_info_settings(Settings(lore_strategy="nonsense")).strategy == Strategy.CHARACTER_FIRST
    )
