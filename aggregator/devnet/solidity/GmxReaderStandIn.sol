// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

import "./GmxTypes.sol";

/// @notice The DataStore read the stand-in needs.
interface IGmxStandInDataStore {
    function getUint(bytes32 key) external view returns (uint256);
}

/// @title GmxReaderStandIn: a STAND-IN for GMX v2's Reader (gmx-io/gmx-synthetics), written for the
///        crossmargin devnet. It is NOT GMX's Reader.
/// @notice Serves the Reader's position reads with the same names, selectors and return layouts
///         (GmxTypes): getMarket, getPosition, getAccountPositions, getAccountPositionInfoList (v2.2
///         signature: account, markets[], marketPrices[], uiFeeReceiver, start, end), getPositionInfo
///         (full close only) and isPositionLiquidatable(dataStore, referralStorage, positionKey, market,
///         prices, shouldValidateMinCollateralUsd, forLiquidation) -> (bool, reason, info).
///
///         Reproduced: the liquidation rule of PositionUtils.isPositionLiquidatable -
///           pnl       = long ? sizeInTokens*index.min - sizeInUsd : sizeInUsd - sizeInTokens*index.max
///           impact    = closeImpactUsd + pendingImpactAmount*(pending > 0 ? index.min : index.max);
///                       0 if >= 0, else max(impact, -applyFactor(sizeInUsd, MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS))
///           costs     = (positionFee + borrowingFee + fundingFee) in collateral tokens * collateral.min
///           remaining = collateralAmount*collateral.min + pnl + impact - costs
///           liquidatable iff remaining < MIN_COLLATERAL_USD (when validated), or remaining <= 0, or
///           remaining < applyFactor(sizeInUsd, MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION (forLiquidation)
///           or MIN_COLLATERAL_FACTOR) - with GMX's reasons "min collateral", "< 0",
///           "min collateral for leverage"; fee amounts as GMX converts them
///           (positionFee = applyFactor(size, POSITION_FEE_FACTOR(market, false)) / collateral.min,
///           borrowingFee = borrowingFeeUsd / collateral.min).
///
///         NOT reproduced (set by the owner instead, per position): the price-impact curve (a fixed
///         `closeImpactUsd`), borrowing and funding accrual (a fixed `borrowingFeeUsd` and
///         `fundingFeeAmount`), the positive-PnL cap MAX_PNL_FACTOR_FOR_TRADERS (basePnlUsd is always
///         uncapped), referral / pro / UI fees and discounts, the positive-impact fee factor, the
///         open-interest multiplier of MIN_COLLATERAL_FACTOR, partial closes, and position storage in
///         the DataStore (positions live in this contract). Owner-only setters seed markets and
///         positions. Devnet only.
contract GmxReaderStandIn {
    uint256 internal constant FLOAT_PRECISION = 1e30;

    struct Costs {
        int256 closeImpactUsd; // the price impact of closing the whole position, USD x 1e30
        uint256 borrowingFeeUsd; // pending borrowing fee, USD x 1e30
        uint256 fundingFeeAmount; // pending funding fee, collateral token units
    }

    address public immutable owner;
    mapping(address => GmxTypes.MarketProps) internal markets;
    mapping(bytes32 => GmxTypes.PositionProps) internal positions;
    mapping(bytes32 => Costs) internal costs;
    mapping(address => bytes32[]) internal accountKeys;
    mapping(bytes32 => uint256) internal keyIndex; // position in accountKeys + 1; 0 = absent

    error NotOwner();
    error EmptyPosition();
    error EmptyMarketPrice(address market);
    error UnsupportedCollateralToken(address token);
    error FullCloseOnly();

    constructor(address owner_) {
        owner = owner_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    // --- owner setters -------------------------------------------------------------------------

    function setMarket(GmxTypes.MarketProps calldata market) external onlyOwner {
        markets[market.marketToken] = market;
    }

    function positionKey(address account, address market, address collateralToken, bool isLong)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(account, market, collateralToken, isLong));
    }

    function setPosition(
        GmxTypes.PositionAddresses calldata addresses,
        bool isLong,
        uint256 sizeInUsd,
        uint256 sizeInTokens,
        uint256 collateralAmount,
        int256 pendingImpactAmount
    ) external onlyOwner returns (bytes32 key) {
        key = positionKey(addresses.account, addresses.market, addresses.collateralToken, isLong);
        GmxTypes.PositionProps storage p = positions[key];
        p.addresses = addresses;
        p.flags.isLong = isLong;
        p.numbers.sizeInUsd = sizeInUsd;
        p.numbers.sizeInTokens = sizeInTokens;
        p.numbers.collateralAmount = collateralAmount;
        p.numbers.pendingImpactAmount = pendingImpactAmount;
        p.numbers.increasedAtTime = block.timestamp;
        if (keyIndex[key] == 0) {
            accountKeys[addresses.account].push(key);
            keyIndex[key] = accountKeys[addresses.account].length;
        }
    }

    function setCosts(bytes32 key, int256 closeImpactUsd, uint256 borrowingFeeUsd, uint256 fundingFeeAmount)
        external
        onlyOwner
    {
        costs[key] = Costs(closeImpactUsd, borrowingFeeUsd, fundingFeeAmount);
    }

    function removePosition(bytes32 key) external onlyOwner {
        uint256 index = keyIndex[key];
        if (index == 0) revert EmptyPosition();
        address account = positions[key].addresses.account;
        bytes32[] storage keys = accountKeys[account];
        bytes32 last = keys[keys.length - 1];
        keys[index - 1] = last;
        keyIndex[last] = index;
        keys.pop();
        delete keyIndex[key];
        delete positions[key];
        delete costs[key];
    }

    // --- Reader read interface -----------------------------------------------------------------

    function getMarket(address, address key) external view returns (GmxTypes.MarketProps memory) {
        return markets[key];
    }

    function getPosition(address, bytes32 key) external view returns (GmxTypes.PositionProps memory) {
        return positions[key];
    }

    function getAccountPositionCount(address account) external view returns (uint256) {
        return accountKeys[account].length;
    }

    function getAccountPositions(address, address account, uint256 start, uint256 end)
        external
        view
        returns (GmxTypes.PositionProps[] memory out)
    {
        bytes32[] memory keys = _keys(account, start, end);
        out = new GmxTypes.PositionProps[](keys.length);
        for (uint256 i; i < keys.length; i++) {
            out[i] = positions[keys[i]];
        }
    }

    function getAccountPositionInfoList(
        address dataStore,
        address,
        address account,
        address[] memory marketAddresses,
        GmxTypes.MarketPrices[] memory marketPrices,
        address,
        uint256 start,
        uint256 end
    ) external view returns (GmxTypes.PositionInfo[] memory out) {
        bytes32[] memory keys = _keys(account, start, end);
        out = new GmxTypes.PositionInfo[](keys.length);
        for (uint256 i; i < keys.length; i++) {
            address market = positions[keys[i]].addresses.market;
            out[i] = _info(dataStore, keys[i], _pricesFor(marketAddresses, marketPrices, market));
        }
    }

    function getPositionInfo(
        address dataStore,
        address,
        bytes32 key,
        GmxTypes.MarketPrices memory prices,
        uint256 sizeDeltaUsd,
        address,
        bool usePositionSizeAsSizeDeltaUsd
    ) external view returns (GmxTypes.PositionInfo memory) {
        if (!usePositionSizeAsSizeDeltaUsd && sizeDeltaUsd != positions[key].numbers.sizeInUsd) {
            revert FullCloseOnly();
        }
        return _info(dataStore, key, prices);
    }

    function isPositionLiquidatable(
        address dataStore,
        address,
        bytes32 key,
        GmxTypes.MarketProps memory market,
        GmxTypes.MarketPrices memory prices,
        bool shouldValidateMinCollateralUsd,
        bool forLiquidation
    ) external view returns (bool, string memory, GmxTypes.IsPositionLiquidatableInfo memory info) {
        uint256 sizeInUsd = positions[key].numbers.sizeInUsd;
        info.remainingCollateralUsd = _remainingCollateralUsd(dataStore, key, market, prices);

        if (shouldValidateMinCollateralUsd) {
            info.minCollateralUsd = int256(_uint(dataStore, keccak256(abi.encode("MIN_COLLATERAL_USD"))));
            if (info.remainingCollateralUsd < info.minCollateralUsd) return (true, "min collateral", info);
        }
        if (info.remainingCollateralUsd <= 0) return (true, "< 0", info);

        bytes32 factorKey = forLiquidation
            ? _marketKey("MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION", market.marketToken)
            : _marketKey("MIN_COLLATERAL_FACTOR", market.marketToken);
        info.minCollateralUsdForLeverage = int256(_applyFactor(sizeInUsd, _uint(dataStore, factorKey)));
        if (info.remainingCollateralUsd < info.minCollateralUsdForLeverage) {
            return (true, "min collateral for leverage", info);
        }
        return (false, "", info);
    }

    // --- internals -----------------------------------------------------------------------------

    /// @dev collateral + pnl + capped impact - costs, as PositionUtils.isPositionLiquidatable.
    function _remainingCollateralUsd(
        address dataStore,
        bytes32 key,
        GmxTypes.MarketProps memory market,
        GmxTypes.MarketPrices memory prices
    ) internal view returns (int256) {
        GmxTypes.PositionProps memory p = positions[key];
        if (p.addresses.account == address(0)) revert EmptyPosition();
        GmxTypes.PriceProps memory collateralPrice = _collateralPrice(p.addresses.collateralToken, market, prices);
        uint256 costAmount = _positionFeeAmount(dataStore, market.marketToken, p, collateralPrice)
            + costs[key].borrowingFeeUsd / collateralPrice.min + costs[key].fundingFeeAmount;
        int256 impact = _liquidationImpact(dataStore, key, p, market.marketToken, prices);
        return int256(p.numbers.collateralAmount * collateralPrice.min) + _pnl(p, prices) + impact
            - int256(costAmount * collateralPrice.min);
    }

    /// @dev the close impact plus the pending impact, 0 when >= 0, floored at
    ///      -applyFactor(sizeInUsd, MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS).
    function _liquidationImpact(
        address dataStore,
        bytes32 key,
        GmxTypes.PositionProps memory p,
        address market,
        GmxTypes.MarketPrices memory prices
    ) internal view returns (int256 impact) {
        impact = _totalImpact(key, p, prices);
        if (impact >= 0) return 0;
        uint256 maxFactor = _uint(dataStore, _marketKey("MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS", market));
        int256 floor = -int256(_applyFactor(p.numbers.sizeInUsd, maxFactor));
        if (impact < floor) impact = floor;
    }

    function _keys(address account, uint256 start, uint256 end) internal view returns (bytes32[] memory out) {
        bytes32[] storage all = accountKeys[account];
        if (end > all.length) end = all.length;
        if (start >= end) return new bytes32[](0);
        out = new bytes32[](end - start);
        for (uint256 i = start; i < end; i++) {
            out[i - start] = all[i];
        }
    }

    function _pricesFor(address[] memory marketAddresses, GmxTypes.MarketPrices[] memory marketPrices, address market)
        internal
        pure
        returns (GmxTypes.MarketPrices memory)
    {
        for (uint256 i; i < marketAddresses.length; i++) {
            if (marketAddresses[i] == market) return marketPrices[i];
        }
        revert EmptyMarketPrice(market);
    }

    function _uint(address dataStore, bytes32 key) internal view returns (uint256) {
        return IGmxStandInDataStore(dataStore).getUint(key);
    }

    function _marketKey(string memory name, address market) internal pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(abi.encode(name)), market));
    }

    function _applyFactor(uint256 value, uint256 factor) internal pure returns (uint256) {
        return value * factor / FLOAT_PRECISION;
    }

    function _collateralPrice(address token, GmxTypes.MarketProps memory market, GmxTypes.MarketPrices memory prices)
        internal
        pure
        returns (GmxTypes.PriceProps memory)
    {
        if (token == market.longToken) return prices.longTokenPrice;
        if (token == market.shortToken) return prices.shortTokenPrice;
        if (token == market.indexToken) return prices.indexTokenPrice;
        revert UnsupportedCollateralToken(token);
    }

    function _pnl(GmxTypes.PositionProps memory p, GmxTypes.MarketPrices memory prices) internal pure returns (int256) {
        if (p.flags.isLong) {
            return int256(p.numbers.sizeInTokens * prices.indexTokenPrice.min) - int256(p.numbers.sizeInUsd);
        }
        return int256(p.numbers.sizeInUsd) - int256(p.numbers.sizeInTokens * prices.indexTokenPrice.max);
    }

    function _pendingImpactUsd(GmxTypes.PositionProps memory p, GmxTypes.MarketPrices memory prices)
        internal
        pure
        returns (int256)
    {
        int256 pending = p.numbers.pendingImpactAmount;
        uint256 price = pending > 0 ? prices.indexTokenPrice.min : prices.indexTokenPrice.max;
        return pending * int256(price);
    }

    function _totalImpact(bytes32 key, GmxTypes.PositionProps memory p, GmxTypes.MarketPrices memory prices)
        internal
        view
        returns (int256)
    {
        return costs[key].closeImpactUsd + _pendingImpactUsd(p, prices);
    }

    function _positionFeeAmount(
        address dataStore,
        address market,
        GmxTypes.PositionProps memory p,
        GmxTypes.PriceProps memory collateralPrice
    ) internal view returns (uint256) {
        bytes32 key = keccak256(abi.encode(keccak256(abi.encode("POSITION_FEE_FACTOR")), market, false));
        return _applyFactor(p.numbers.sizeInUsd, _uint(dataStore, key)) / collateralPrice.min;
    }

    function _info(address dataStore, bytes32 key, GmxTypes.MarketPrices memory prices)
        internal
        view
        returns (GmxTypes.PositionInfo memory info)
    {
        GmxTypes.PositionProps memory p = positions[key];
        if (p.addresses.account == address(0)) revert EmptyPosition();
        GmxTypes.MarketProps memory market = markets[p.addresses.market];
        info.positionKey = key;
        info.position = p;
        info.fees = _fees(dataStore, key, p, market, prices);
        info.executionPriceResult.priceImpactUsd = costs[key].closeImpactUsd;
        info.executionPriceResult.proportionalPendingImpactUsd = _pendingImpactUsd(p, prices);
        info.executionPriceResult.totalImpactUsd = _totalImpact(key, p, prices);
        info.executionPriceResult.executionPrice =
            p.flags.isLong ? prices.indexTokenPrice.min : prices.indexTokenPrice.max;
        info.basePnlUsd = _pnl(p, prices);
        info.uncappedBasePnlUsd = info.basePnlUsd;
        info.pnlAfterPriceImpactUsd = info.basePnlUsd + costs[key].closeImpactUsd;
    }

    function _fees(
        address dataStore,
        bytes32 key,
        GmxTypes.PositionProps memory p,
        GmxTypes.MarketProps memory market,
        GmxTypes.MarketPrices memory prices
    ) internal view returns (GmxTypes.PositionFees memory fees) {
        GmxTypes.PriceProps memory collateralPrice = _collateralPrice(p.addresses.collateralToken, market, prices);
        fees.collateralTokenPrice = collateralPrice;
        fees.positionFeeFactor =
            _uint(dataStore, keccak256(abi.encode(keccak256(abi.encode("POSITION_FEE_FACTOR")), market.marketToken, false)));
        fees.positionFeeAmount = _positionFeeAmount(dataStore, market.marketToken, p, collateralPrice);
        fees.feeAmountForPool = fees.positionFeeAmount;
        fees.positionFeeAmountForPool = fees.positionFeeAmount;
        fees.borrowing.borrowingFeeUsd = costs[key].borrowingFeeUsd;
        fees.borrowing.borrowingFeeAmount = costs[key].borrowingFeeUsd / collateralPrice.min;
        fees.funding.fundingFeeAmount = costs[key].fundingFeeAmount;
        fees.ui.uiFeeReceiver = address(0);
        fees.totalCostAmountExcludingFunding = fees.positionFeeAmount + fees.borrowing.borrowingFeeAmount;
        fees.totalCostAmount = fees.totalCostAmountExcludingFunding + fees.funding.fundingFeeAmount;
    }
}
