// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// @notice The two token calls the stand-in needs.
interface IStandInERC20 {
    function decimals() external view returns (uint8);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @notice Chainlink AggregatorV3's price read.
interface IStandInPriceFeed {
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

/// @title CometStandIn: a STAND-IN for a Compound V3 (Comet) market, written for the crossmargin devnet.
/// @notice This is NOT Compound's Comet. No Comet artifacts are published on npm, so this small contract
///         reproduces what a risk monitor reads from a Comet proxy, with the same function names,
///         selectors and return layouts (CometMainInterface + CometExtInterface):
///         baseToken, baseTokenPriceFeed, baseScale, numAssets, getAssetInfo / getAssetInfoByAddress,
///         userBasic, userCollateral, collateralBalanceOf, totalsBasic, totalsCollateral, balanceOf,
///         borrowBalanceOf, getPrice, isLiquidatable, isBorrowCollateralized; and the same liquidation
///         rule (Comet.sol isLiquidatable: the STORED baseBorrowIndex, Solidity truncation toward zero,
///         the 4-decimal collateral factors), principal / present-value rounding (CometCore) and
///         absorb accounting (seize all collateral, credit value * liquidationFactor in base).
///         What it leaves out: rewards tracking, pause guardian, buyCollateral / storefront, allowances,
///         utilization-based rate curves (rates are constants the governor sets), the proxy.
///         Devnet only.
contract CometStandIn {
    struct AssetConfig {
        address asset;
        address priceFeed;
        uint8 decimals;
        uint64 borrowCollateralFactor;
        uint64 liquidateCollateralFactor;
        uint64 liquidationFactor;
        uint128 supplyCap;
    }

    struct AssetInfo {
        uint8 offset;
        address asset;
        address priceFeed;
        uint64 scale;
        uint64 borrowCollateralFactor;
        uint64 liquidateCollateralFactor;
        uint64 liquidationFactor;
        uint128 supplyCap;
    }

    struct TotalsBasic {
        uint64 baseSupplyIndex;
        uint64 baseBorrowIndex;
        uint64 trackingSupplyIndex;
        uint64 trackingBorrowIndex;
        uint104 totalSupplyBase;
        uint104 totalBorrowBase;
        uint40 lastAccrualTime;
        uint8 pauseFlags;
    }

    struct UserBasic {
        int104 principal;
        uint64 baseTrackingIndex;
        uint64 baseTrackingAccrued;
        uint16 assetsIn;
        uint8 _reserved;
    }

    struct UserCollateral {
        uint128 balance;
        uint128 _reserved;
    }

    struct TotalsCollateral {
        uint128 totalSupplyAsset;
        uint128 _reserved;
    }

    error Absurd();
    error BadAsset();
    error BadDecimals();
    error BadPrice();
    error BorrowTooSmall();
    error NotCollateralized();
    error NotLiquidatable();
    error SupplyCapExceeded();
    error TooManyAssets();
    error TransferFailed();
    error Unauthorized();

    event Supply(address indexed from, address indexed dst, uint256 amount);
    event Withdraw(address indexed src, address indexed to, uint256 amount);
    event SupplyCollateral(address indexed from, address indexed dst, address indexed asset, uint256 amount);
    event WithdrawCollateral(address indexed src, address indexed to, address indexed asset, uint256 amount);
    event AbsorbDebt(address indexed absorber, address indexed borrower, uint256 basePaidOut, uint256 usdValue);
    event AbsorbCollateral(
        address indexed absorber,
        address indexed borrower,
        address indexed asset,
        uint256 collateralAbsorbed,
        uint256 usdValue
    );

    uint64 internal constant BASE_INDEX_SCALE = 1e15;
    uint64 internal constant FACTOR_SCALE = 1e18;
    uint64 internal constant FACTOR_STORAGE_UNIT = 1e14; // factors keep 4 decimals, as in Comet
    uint8 internal constant MAX_ASSETS = 12;

    address public immutable governor;
    address public immutable baseToken;
    address public immutable baseTokenPriceFeed;
    uint256 public immutable baseScale;
    uint8 public immutable decimals;
    uint256 public immutable baseBorrowMin;
    uint8 public immutable numAssets;

    /// @notice Per-second rates (1e18 scale) applied by accrual; set by the governor.
    uint64 public supplyRatePerSecond;
    uint64 public borrowRatePerSecond;

    AssetInfo[] internal assets;
    TotalsBasic internal totals;

    mapping(address => UserBasic) public userBasic;
    mapping(address => mapping(address => UserCollateral)) public userCollateral;
    mapping(address => TotalsCollateral) public totalsCollateral;

    constructor(
        address governor_,
        address baseToken_,
        address baseTokenPriceFeed_,
        uint256 baseBorrowMin_,
        AssetConfig[] memory configs
    ) {
        if (configs.length > MAX_ASSETS) revert TooManyAssets();
        governor = governor_;
        baseToken = baseToken_;
        baseTokenPriceFeed = baseTokenPriceFeed_;
        uint8 baseDecimals = IStandInERC20(baseToken_).decimals();
        decimals = baseDecimals;
        baseScale = 10 ** baseDecimals;
        baseBorrowMin = baseBorrowMin_;
        numAssets = uint8(configs.length);
        for (uint8 i = 0; i < configs.length; i++) {
            AssetConfig memory c = configs[i];
            if (IStandInERC20(c.asset).decimals() != c.decimals) revert BadDecimals();
            if (c.borrowCollateralFactor >= c.liquidateCollateralFactor) revert Absurd();
            if (c.liquidateCollateralFactor > FACTOR_SCALE || c.liquidationFactor > FACTOR_SCALE) revert Absurd();
            assets.push(
                AssetInfo({
                    offset: i,
                    asset: c.asset,
                    priceFeed: c.priceFeed,
                    scale: uint64(10 ** c.decimals),
                    borrowCollateralFactor: _fourDecimals(c.borrowCollateralFactor),
                    liquidateCollateralFactor: _fourDecimals(c.liquidateCollateralFactor),
                    liquidationFactor: _fourDecimals(c.liquidationFactor),
                    supplyCap: c.supplyCap
                })
            );
        }
        totals.baseSupplyIndex = BASE_INDEX_SCALE;
        totals.baseBorrowIndex = BASE_INDEX_SCALE;
        totals.trackingSupplyIndex = 0;
        totals.trackingBorrowIndex = 0;
        totals.lastAccrualTime = uint40(block.timestamp);
    }

    // ----------------------------------------------------------------------------------------- reads

    function getAssetInfo(uint8 i) public view returns (AssetInfo memory) {
        if (i >= numAssets) revert BadAsset();
        return assets[i];
    }

    function getAssetInfoByAddress(address asset) public view returns (AssetInfo memory) {
        for (uint8 i = 0; i < numAssets; i++) {
            if (assets[i].asset == asset) return assets[i];
        }
        revert BadAsset();
    }

    /// @notice The STORED totals (CometExt.totalsBasic): indices as of lastAccrualTime.
    function totalsBasic() external view returns (TotalsBasic memory) {
        return totals;
    }

    function getPrice(address priceFeed) public view returns (uint256) {
        (, int256 price,,,) = IStandInPriceFeed(priceFeed).latestRoundData();
        if (price <= 0) revert BadPrice();
        return uint256(price);
    }

    function getSupplyRate(uint256) external view returns (uint64) {
        return supplyRatePerSecond;
    }

    function getBorrowRate(uint256) external view returns (uint64) {
        return borrowRatePerSecond;
    }

    function getUtilization() external view returns (uint256) {
        (uint64 supplyIndex, uint64 borrowIndex) = _accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
        uint256 supplied = _presentValueSupply(supplyIndex, totals.totalSupplyBase);
        if (supplied == 0) return 0;
        return _presentValueBorrow(borrowIndex, totals.totalBorrowBase) * FACTOR_SCALE / supplied;
    }

    /// @notice Base supplied by `account`, accrued to now (like Comet: a view, floor); 0 when borrowing.
    function balanceOf(address account) external view returns (uint256) {
        (uint64 supplyIndex,) = _accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
        int104 principal = userBasic[account].principal;
        return principal > 0 ? _presentValueSupply(supplyIndex, uint104(principal)) : 0;
    }

    /// @notice Base borrowed by `account`, accrued to now (like Comet: a view); 0 when supplying.
    function borrowBalanceOf(address account) external view returns (uint256) {
        (, uint64 borrowIndex) = _accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
        int104 principal = userBasic[account].principal;
        return principal < 0 ? _presentValueBorrow(borrowIndex, uint104(-principal)) : 0;
    }

    function collateralBalanceOf(address account, address asset) external view returns (uint128) {
        return userCollateral[account][asset].balance;
    }

    function totalSupply() external view returns (uint256) {
        (uint64 supplyIndex,) = _accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
        return _presentValueSupply(supplyIndex, totals.totalSupplyBase);
    }

    function totalBorrow() external view returns (uint256) {
        (, uint64 borrowIndex) = _accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
        return _presentValueBorrow(borrowIndex, totals.totalBorrowBase);
    }

    /// @notice Comet.isLiquidatable, term for term: stored borrow index, truncation toward zero.
    function isLiquidatable(address account) public view returns (bool) {
        int104 principal = userBasic[account].principal;
        if (principal >= 0) return false;
        uint16 assetsIn = userBasic[account].assetsIn;
        int256 liquidity = _signedMulPrice(_presentValue(principal), getPrice(baseTokenPriceFeed), uint64(baseScale));
        for (uint8 i = 0; i < numAssets; i++) {
            if (_isInAsset(assetsIn, i)) {
                if (liquidity >= 0) return false;
                AssetInfo memory asset = assets[i];
                uint256 newAmount =
                    _mulPrice(userCollateral[account][asset.asset].balance, getPrice(asset.priceFeed), asset.scale);
                liquidity += int256(_mulFactor(newAmount, asset.liquidateCollateralFactor));
            }
        }
        return liquidity < 0;
    }

    /// @notice Comet.isBorrowCollateralized: the same sum with borrowCollateralFactor, `>= 0`.
    function isBorrowCollateralized(address account) public view returns (bool) {
        int104 principal = userBasic[account].principal;
        if (principal >= 0) return true;
        uint16 assetsIn = userBasic[account].assetsIn;
        int256 liquidity = _signedMulPrice(_presentValue(principal), getPrice(baseTokenPriceFeed), uint64(baseScale));
        for (uint8 i = 0; i < numAssets; i++) {
            if (_isInAsset(assetsIn, i)) {
                if (liquidity >= 0) return true;
                AssetInfo memory asset = assets[i];
                uint256 newAmount =
                    _mulPrice(userCollateral[account][asset.asset].balance, getPrice(asset.priceFeed), asset.scale);
                liquidity += int256(_mulFactor(newAmount, asset.borrowCollateralFactor));
            }
        }
        return liquidity >= 0;
    }

    // ---------------------------------------------------------------------------------------- writes

    function setRates(uint64 supplyRate, uint64 borrowRate) external {
        if (msg.sender != governor) revert Unauthorized();
        _accrue();
        supplyRatePerSecond = supplyRate;
        borrowRatePerSecond = borrowRate;
    }

    /// @notice Write the interest indices accrued since lastAccrualTime (Comet.accrueAccount's accrual).
    function accrueAccount(address) external {
        _accrue();
    }

    function accrue() external {
        _accrue();
    }

    function supply(address asset, uint256 amount) external {
        _supply(msg.sender, msg.sender, asset, amount);
    }

    function supplyTo(address dst, address asset, uint256 amount) external {
        _supply(msg.sender, dst, asset, amount);
    }

    /// @notice Withdraw base (borrowing past zero, if collateralized) or collateral.
    function withdraw(address asset, uint256 amount) external {
        _withdraw(msg.sender, msg.sender, asset, amount);
    }

    function withdrawTo(address to, address asset, uint256 amount) external {
        _withdraw(msg.sender, to, asset, amount);
    }

    /// @notice Comet.absorb: accrue, then for each account revert unless liquidatable, seize all its
    ///         collateral and credit value * liquidationFactor (in base) against its debt.
    function absorb(address absorber, address[] calldata accounts) external {
        _accrue();
        for (uint256 i = 0; i < accounts.length; i++) {
            _absorb(absorber, accounts[i]);
        }
    }

    // ------------------------------------------------------------------------------------- internals

    function _supply(address from, address dst, address asset, uint256 amount) internal {
        _transferIn(asset, from, amount);
        if (asset == baseToken) {
            _accrue();
            UserBasic memory dstUser = userBasic[dst];
            int104 oldPrincipal = dstUser.principal;
            int256 newBalance = _presentValue(oldPrincipal) + int256(amount);
            int104 newPrincipal = _principalValue(newBalance);
            (uint104 repayAmount, uint104 supplyAmount) = _repayAndSupplyAmount(oldPrincipal, newPrincipal);
            totals.totalSupplyBase += supplyAmount;
            totals.totalBorrowBase -= repayAmount;
            userBasic[dst].principal = newPrincipal;
            emit Supply(from, dst, amount);
        } else {
            AssetInfo memory info = getAssetInfoByAddress(asset);
            uint128 newTotal = totalsCollateral[asset].totalSupplyAsset + uint128(amount);
            if (newTotal > info.supplyCap) revert SupplyCapExceeded();
            totalsCollateral[asset].totalSupplyAsset = newTotal;
            uint128 oldBalance = userCollateral[dst][asset].balance;
            uint128 newBalance = oldBalance + uint128(amount);
            userCollateral[dst][asset].balance = newBalance;
            _updateAssetsIn(dst, info.offset, oldBalance, newBalance);
            emit SupplyCollateral(from, dst, asset, amount);
        }
    }

    function _withdraw(address src, address to, address asset, uint256 amount) internal {
        if (asset == baseToken) {
            _accrue();
            int104 oldPrincipal = userBasic[src].principal;
            int256 newBalance = _presentValue(oldPrincipal) - int256(amount);
            int104 newPrincipal = _principalValue(newBalance);
            (uint104 withdrawAmount, uint104 borrowAmount) = _withdrawAndBorrowAmount(oldPrincipal, newPrincipal);
            totals.totalSupplyBase -= withdrawAmount;
            totals.totalBorrowBase += borrowAmount;
            userBasic[src].principal = newPrincipal;
            if (newBalance < 0) {
                if (uint256(-newBalance) < baseBorrowMin) revert BorrowTooSmall();
                if (!isBorrowCollateralized(src)) revert NotCollateralized();
            }
            emit Withdraw(src, to, amount);
        } else {
            AssetInfo memory info = getAssetInfoByAddress(asset);
            uint128 oldBalance = userCollateral[src][asset].balance;
            uint128 newBalance = oldBalance - uint128(amount);
            totalsCollateral[asset].totalSupplyAsset -= uint128(amount);
            userCollateral[src][asset].balance = newBalance;
            _updateAssetsIn(src, info.offset, oldBalance, newBalance);
            if (!isBorrowCollateralized(src)) revert NotCollateralized();
            emit WithdrawCollateral(src, to, asset, amount);
        }
        _transferOut(asset, to, amount);
    }

    function _absorb(address absorber, address account) internal {
        if (!isLiquidatable(account)) revert NotLiquidatable();
        UserBasic memory user = userBasic[account];
        int104 oldPrincipal = user.principal;
        int256 oldBalance = _presentValue(oldPrincipal);
        uint256 basePrice = getPrice(baseTokenPriceFeed);
        uint256 deltaValue = 0;
        for (uint8 i = 0; i < numAssets; i++) {
            if (_isInAsset(user.assetsIn, i)) {
                AssetInfo memory asset = assets[i];
                uint128 seizeAmount = userCollateral[account][asset.asset].balance;
                userCollateral[account][asset.asset].balance = 0;
                totalsCollateral[asset.asset].totalSupplyAsset -= seizeAmount;
                uint256 value = _mulPrice(seizeAmount, getPrice(asset.priceFeed), asset.scale);
                deltaValue += _mulFactor(value, asset.liquidationFactor);
                emit AbsorbCollateral(absorber, account, asset.asset, seizeAmount, value);
            }
        }
        uint256 deltaBalance = deltaValue * baseScale / basePrice;
        int256 newBalance = oldBalance + int256(deltaBalance);
        if (newBalance < 0) newBalance = 0; // the rest of the debt is written off against reserves
        int104 newPrincipal = _principalValue(newBalance);
        (uint104 repayAmount, uint104 supplyAmount) = _repayAndSupplyAmount(oldPrincipal, newPrincipal);
        totals.totalSupplyBase += supplyAmount;
        totals.totalBorrowBase -= repayAmount;
        userBasic[account].principal = newPrincipal;
        userBasic[account].assetsIn = 0;
        uint256 basePaidOut = uint256(newBalance - oldBalance);
        emit AbsorbDebt(absorber, account, basePaidOut, _mulPrice(basePaidOut, basePrice, uint64(baseScale)));
    }

    function _accrue() internal {
        uint256 elapsed = block.timestamp - totals.lastAccrualTime;
        if (elapsed > 0) {
            (totals.baseSupplyIndex, totals.baseBorrowIndex) = _accruedInterestIndices(elapsed);
            totals.lastAccrualTime = uint40(block.timestamp);
        }
    }

    /// @dev Comet.accruedInterestIndices: idx += idx * (rate * dt) / 1e18.
    function _accruedInterestIndices(uint256 elapsed) internal view returns (uint64, uint64) {
        uint64 supplyIndex = totals.baseSupplyIndex;
        uint64 borrowIndex = totals.baseBorrowIndex;
        if (elapsed > 0) {
            supplyIndex += uint64(_mulFactor(supplyIndex, supplyRatePerSecond * elapsed));
            borrowIndex += uint64(_mulFactor(borrowIndex, borrowRatePerSecond * elapsed));
        }
        return (supplyIndex, borrowIndex);
    }

    function _presentValue(int104 principal) internal view returns (int256) {
        if (principal >= 0) return int256(_presentValueSupply(totals.baseSupplyIndex, uint104(principal)));
        return -int256(_presentValueBorrow(totals.baseBorrowIndex, uint104(-principal)));
    }

    function _principalValue(int256 present) internal view returns (int104) {
        if (present >= 0) return int104(int256(uint256(present) * BASE_INDEX_SCALE / totals.baseSupplyIndex));
        uint256 owed = uint256(-present);
        return -int104(int256((owed * BASE_INDEX_SCALE + totals.baseBorrowIndex - 1) / totals.baseBorrowIndex));
    }

    function _presentValueSupply(uint64 index, uint104 principal) internal pure returns (uint256) {
        return uint256(principal) * index / BASE_INDEX_SCALE;
    }

    function _presentValueBorrow(uint64 index, uint104 principal) internal pure returns (uint256) {
        return uint256(principal) * index / BASE_INDEX_SCALE;
    }

    function _repayAndSupplyAmount(int104 oldP, int104 newP) internal pure returns (uint104, uint104) {
        if (newP < oldP) return (0, 0);
        if (newP <= 0) return (uint104(newP - oldP), 0);
        if (oldP >= 0) return (0, uint104(newP - oldP));
        return (uint104(-oldP), uint104(newP));
    }

    function _withdrawAndBorrowAmount(int104 oldP, int104 newP) internal pure returns (uint104, uint104) {
        if (newP > oldP) return (0, 0);
        if (newP >= 0) return (uint104(oldP - newP), 0);
        if (oldP <= 0) return (0, uint104(oldP - newP));
        return (uint104(oldP), uint104(-newP));
    }

    function _updateAssetsIn(address account, uint8 offset, uint128 initial, uint128 final_) internal {
        if (initial == 0 && final_ != 0) {
            userBasic[account].assetsIn |= uint16(1) << offset;
        } else if (initial != 0 && final_ == 0) {
            userBasic[account].assetsIn &= ~(uint16(1) << offset);
        }
    }

    function _isInAsset(uint16 assetsIn, uint8 offset) internal pure returns (bool) {
        return (assetsIn & (uint16(1) << offset)) != 0;
    }

    function _mulPrice(uint256 n, uint256 price, uint64 fromScale) internal pure returns (uint256) {
        return n * price / fromScale;
    }

    /// @dev int division truncates toward zero, exactly like Comet's signedMulPrice.
    function _signedMulPrice(int256 n, uint256 price, uint64 fromScale) internal pure returns (int256) {
        return n * int256(price) / int256(uint256(fromScale));
    }

    function _mulFactor(uint256 n, uint256 factor) internal pure returns (uint256) {
        return n * factor / FACTOR_SCALE;
    }

    function _fourDecimals(uint64 factor) internal pure returns (uint64) {
        return (factor / FACTOR_STORAGE_UNIT) * FACTOR_STORAGE_UNIT;
    }

    function _transferIn(address asset, address from, uint256 amount) internal {
        if (!IStandInERC20(asset).transferFrom(from, address(this), amount)) revert TransferFailed();
    }

    function _transferOut(address asset, address to, uint256 amount) internal {
        if (!IStandInERC20(asset).transfer(to, amount)) revert TransferFailed();
    }
}
