from pathlib import Path

from pydantic import AliasChoices

from promptlab.core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.append(f"PROMPTLAB_{name.upper()}")
        elif isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.append(str(alias.choices[0]))
    return names


def test_the_readme_configuration_table_names_every_setting() -> None:
    missing = [name for name in env_names() if f"`{name}`" not in README]
    assert missing == []
