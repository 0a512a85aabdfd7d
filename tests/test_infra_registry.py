"""The DigitalOcean registry: the tier the program picks from the image size, priced by the costs, and the garbage
collection after each push that keeps the registry from filling up."""

from __future__ import annotations

from infra.components.image import GC_TYPE
from infra.costs.catalogue import load_catalogue
from infra.costs.pricing import price_plan
from infra.mock_plan import plan_stack
from infra.tables import registry

REGISTRY = "digitalocean:index/containerRegistry:ContainerRegistry"


def test_the_program_picks_the_registry_tier_that_holds_the_kept_images_and_costs_price_it():
    assert registry.tier_for(568, 2) == "basic" and registry.tier_for(200, 2) == "starter"
    assert registry.tier_for(60 * 1024, 2) == "professional"
    tiers = {
        tier: plan_stack("dev", overrides=overrides).one(REGISTRY)
        for tier, overrides in (("picked", None), ("starter", {"robojam:registryTier": "starter"}))
    }
    assert tiers["picked"].inputs["subscriptionTierSlug"] == "basic"
    assert tiers["starter"].inputs["subscriptionTierSlug"] == "starter"
    cat = load_catalogue()
    est = price_plan(plan_stack("dev"), cat)
    assert [line.component for line in est.lines if line.category == "storage"] == ["registry tier basic"]
    assert est.warnings == ()  # the picked tier holds the images; starter would warn that pushes fail
    starter = price_plan(plan_stack("dev", overrides={"robojam:registryTier": "starter"}), cat)
    assert any("pushes would fail" in warning for warning in starter.warnings)


def test_every_push_is_followed_by_a_garbage_collection_of_untagged_images():
    plan = plan_stack("dev")
    (gc,) = plan.of_type("command:local:Command")
    image = plan.one("docker-build:index:Image")
    (ref,) = gc.inputs["triggers"]  # a new image digest runs it again
    assert "@sha256:" in ref and ref in plan.one("command:remote:Command").inputs["stdin"]  # the ref rolled out
    assert image.name in gc.dependencies  # after the push
    assert gc.inputs["environment"]["REGISTRY"] == plan.one(REGISTRY).inputs["name"]
    assert f'"type": "{GC_TYPE}"' in gc.inputs["create"] and "/garbage-collection" in gc.inputs["create"]
    assert "|| echo" in gc.inputs["create"]  # a collection already running does not fail `pulumi up`
    prebuilt = plan_stack("dev", {"robojam:image": "ghcr.io/example/robojam:1.0"})
    assert prebuilt.of_type("command:local:Command") == []  # nothing pushed, nothing to collect
