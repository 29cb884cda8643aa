"""Back Market Pro channel plugin for cartplugin (BackMarketForBusiness WebsiteCartPlugin)."""

__version__ = "0.1.0"
